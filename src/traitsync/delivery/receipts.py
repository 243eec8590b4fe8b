"""What activation reads of delivery: confirmations as data, and what is still on its way.

Delivery marks a row ``delivered`` with ``applied`` false; activation folds it into what the
destination holds (snapshots, list membership) and marks it applied, in its own transaction.
Nothing in delivery calls activation. These are the only outbox queries activation makes, so
the outbox's columns stay delivery's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from traitsync.delivery.outbox import DEAD, DELIVERED
from traitsync.store.database import Connection

_CHUNK = 400


@dataclass(frozen=True)
class Receipt:
    """A delivered message activation has not folded yet: its ``meta`` and the adapter's result."""

    outbox_id: int
    destination_id: str
    meta: dict[str, Any]
    result: dict[str, Any] | None


def unapplied(conn: Connection, limit: int = 1000) -> list[Receipt]:
    """Delivered rows not yet folded, oldest first; on PostgreSQL rows another folder holds are skipped."""
    lock = " FOR UPDATE SKIP LOCKED" if conn.dialect == "postgresql" else ""
    rows = conn.fetchall("SELECT id, destination_id, meta, result FROM delivery_outbox WHERE applied = ? AND state = ?"
                         f" ORDER BY id LIMIT ?{lock}", (False, DELIVERED, limit))
    return [Receipt(int(i), str(d), orjson.loads(m) if m else {}, orjson.loads(r) if r else None)
            for i, d, m, r in rows]


def any_unapplied(conn: Connection) -> bool:
    """Whether any delivered row waits to be folded (a cheap read before taking a write lock)."""
    return conn.fetchone("SELECT 1 FROM delivery_outbox WHERE applied = ? AND state = ? LIMIT 1",
                         (False, DELIVERED)) is not None


def mark_applied(conn: Connection, outbox_ids: Sequence[int]) -> None:
    ids = list(outbox_ids)
    for i in range(0, len(ids), _CHUNK):
        part = ids[i:i + _CHUNK]
        conn.execute(f"UPDATE delivery_outbox SET applied = ? WHERE id IN ({', '.join('?' for _ in part)})",
                     (True, *part))


def undelivered_meta(conn: Connection, destination_id: str, order_keys: Sequence[str]) -> list[dict[str, Any]]:
    """``meta`` of every message for these keys the destination may not hold yet, in queue order:
    not terminal, or delivered but not folded."""
    out: list[tuple[int, dict[str, Any]]] = []
    keys = sorted(set(order_keys))
    for i in range(0, len(keys), _CHUNK):
        part = keys[i:i + _CHUNK]
        marks = ", ".join("?" for _ in part)
        for row_id, meta in conn.fetchall(
                "SELECT id, meta FROM delivery_outbox WHERE destination_id = ? AND (terminal = ? OR"
                f" (state = ? AND applied = ?)) AND order_key IN ({marks})",
                (destination_id, False, DELIVERED, False, *part)):
            if meta:
                out.append((int(row_id), orjson.loads(meta)))
    out.sort(key=lambda pair: pair[0])
    return [meta for _, meta in out]


def busy(conn: Connection, destination_id: str, order_key: str) -> bool:
    """Whether any message of ``order_key`` is undelivered or delivered but not yet folded."""
    value = conn.scalar("SELECT COUNT(*) FROM delivery_outbox WHERE destination_id = ? AND order_key = ? AND"
                        " (terminal = ? OR (state = ? AND applied = ?))",
                        (destination_id, order_key, False, DELIVERED, False))
    return bool(value)


def died_with(conn: Connection, destination_id: str, order_key: str, code: str, since_ms: int) -> bool:
    """Whether a message of ``order_key`` went to the dead letter with ``code`` at or after ``since_ms``."""
    value = conn.scalar("SELECT COUNT(*) FROM delivery_outbox WHERE destination_id = ? AND order_key = ? AND state = ?"
                        " AND last_error_code = ? AND finished_at_ms >= ?",
                        (destination_id, order_key, DEAD, code, since_ms))
    return bool(value)
