"""Dead letters one by one: list them page by page and put chosen ones back in the queue.

``Outbox.replay`` re-queues every dead row of a time range (the CLI's bulk tool); a person
looking at a console picks rows, so this replays by outbox id with the same guard and effect:
only rows still dead move, back to ``pending`` with their attempt counter and give-up window
restarted, so the same ``messageId`` is sent again and ``delivery_attempts`` keeps the history.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from traitsync.delivery.outbox import DEAD, PENDING, now_ms
from traitsync.delivery.overview import for_display
from traitsync.store.database import Database


@dataclass(frozen=True)
class DeadLetter:
    outbox_id: int
    message_id: str
    message_type: str
    order_key: str
    attempts: int
    created_at_ms: int
    died_at_ms: int | None
    code: str | None
    error: str | None
    message: dict[str, Any]


def dead_letters(db: Database, destination_id: str, *, before_id: int | None = None,
                 limit: int = 25) -> tuple[list[DeadLetter], int]:
    """The newest dead rows (ids below ``before_id``) and how many dead rows there are in all."""
    conn = db.connect()
    try:
        rows = conn.fetchall(
            "SELECT id, message_id, message_type, order_key, attempts, created_at_ms, finished_at_ms,"
            " last_error_code, last_error, body FROM delivery_outbox WHERE destination_id = ? AND state = ?"
            " AND id < ? ORDER BY id DESC LIMIT ?",
            (destination_id, DEAD, before_id if before_id is not None else 2**62, limit))
        total = int(conn.scalar("SELECT COUNT(*) FROM delivery_outbox WHERE destination_id = ? AND state = ?",
                                (destination_id, DEAD)) or 0)
        conn.commit()
    finally:
        conn.close()
    return [DeadLetter(int(r[0]), r[1], r[2], r[3], int(r[4]), int(r[5]), None if r[6] is None else int(r[6]),
                       r[7], r[8], for_display(json.loads(r[9]))) for r in rows], total


def replay_dead_letters(db: Database, destination_id: str, outbox_ids: Sequence[int] | None) -> int:
    """Re-queue the given dead rows (every dead row of the destination when ``None``)."""
    sql = ("UPDATE delivery_outbox SET state = ?, terminal = ?, attempts = 0, first_attempt_at_ms = NULL,"
           " next_attempt_at_ms = ?, finished_at_ms = NULL, lease_until_ms = NULL"
           " WHERE destination_id = ? AND state = ?")
    params: list[Any] = [PENDING, False, now_ms(), destination_id, DEAD]
    if outbox_ids is not None:
        if not outbox_ids:
            return 0
        sql += f" AND id IN ({','.join('?' * len(outbox_ids))})"
        params.extend(int(i) for i in outbox_ids)
    conn = db.connect()
    try:
        with conn.transaction():
            return int(conn.execute(sql, params).rowcount)
    finally:
        conn.close()
