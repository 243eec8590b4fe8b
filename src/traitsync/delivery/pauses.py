"""A destination paused after bad credentials, visible to every process and to the API.

Bad credentials (401/403, a refused token) fail every message alike, so delivery stops sending
to that destination for a while instead of spending each message's attempts; the pause lives in
``delivery_destination_state`` so the worker process, other workers and the management API see it.
"""

from __future__ import annotations

import time

from traitsync.store.database import Connection


def _now_ms() -> int:
    return int(time.time() * 1000)


def pause(conn: Connection, destination_id: str, until_ms: int, code: str | None, rate: float) -> None:
    """Pause ``destination_id`` until ``until_ms`` (the caller commits)."""
    conn.execute("INSERT INTO delivery_destination_state (destination_id, grants, blocked_until_ms, current_rate,"
                 " paused_until_ms, pause_code, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?)"
                 " ON CONFLICT (destination_id) DO UPDATE SET paused_until_ms = excluded.paused_until_ms,"
                 " pause_code = excluded.pause_code, updated_at_ms = excluded.updated_at_ms",
                 (destination_id, "[]", 0, rate, until_ms, code, _now_ms()))


def resume(conn: Connection, destination_id: str) -> None:
    conn.execute("UPDATE delivery_destination_state SET paused_until_ms = 0, pause_code = NULL"
                 " WHERE destination_id = ?", (destination_id,))


def paused_until(conn: Connection, destination_id: str) -> tuple[int, str | None]:
    """(paused until, in epoch ms, 0 when not paused; the code that paused it)."""
    row = conn.fetchone("SELECT paused_until_ms, pause_code FROM delivery_destination_state WHERE destination_id = ?",
                        (destination_id,))
    return (0, None) if row is None else (int(row[0]), row[1])
