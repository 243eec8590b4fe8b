"""What a computation's page shows beyond its summary: size over time and who is in it.

**Size history** is read back from ``computation_results``, the stream of value changes the
engine already writes (one row per change), so no sampler runs and no new table grows: each
change that makes a profile count (an audience turning true, a trait getting a value) adds one,
each that undoes it removes one, and the running sum per time bucket is the size. The series is
then anchored so its last point equals the size the engine reports now, which absorbs what the
stream cannot show (a merged-away profile's values are dropped without a change row).
The query scans that computation's rows; at very large result streams an index on
``(computation_key, at_ms)`` would be the next step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from traitsync.store.database import Connection, Database

#: A row "counts" when the value makes the profile part of the computation's size.
_AUDIENCE_IN = "{col} = 'true'"
_TRAIT_IN = "{col} IS NOT NULL AND {col} <> 'null'"


def _end(conn: Connection) -> None:
    if conn.dialect == "postgresql":
        conn.commit()


def _counts(is_audience: bool, col: str) -> str:
    return (_AUDIENCE_IN if is_audience else _TRAIT_IN).format(col=col)


@dataclass(frozen=True)
class SizePoint:
    at_ms: int
    size: int


def size_history(db: Database, key: str, *, is_audience: bool, current_size: int, since_ms: int,
                 until_ms: int, buckets: int = 60) -> list[SizePoint]:
    """``buckets`` points over ``[since_ms, until_ms)``, each the size at the end of its bucket."""
    buckets = max(1, buckets)
    width = max(1, -(-(until_ms - since_ms) // buckets))
    new_in, old_in = _counts(is_audience, "new_value"), _counts(is_audience, "old_value")
    delta = (f"(CASE WHEN {new_in} THEN 1 ELSE 0 END) - (CASE WHEN {old_in} THEN 1 ELSE 0 END)")
    conn = db.thread_connection()
    try:
        rows = conn.fetchall(
            f"SELECT CASE WHEN at_ms < ? THEN -1 ELSE (at_ms - ?) / ? END AS b, SUM({delta}) "
            "FROM computation_results WHERE computation_key = ? AND at_ms < ? GROUP BY b",
            (since_ms, since_ms, width, key, until_ms))
        after = conn.scalar(f"SELECT SUM({delta}) FROM computation_results WHERE computation_key = ? "
                            "AND at_ms >= ?", (key, until_ms))
    finally:
        _end(conn)
    by_bucket = {int(b): int(n or 0) for b, n in rows}
    running = by_bucket.pop(-1, 0)
    sizes = []
    for i in range(buckets):
        running += by_bucket.get(i, 0)
        sizes.append(running)
    # Anchor: the size at ``until_ms`` is today's size less what changed since.
    shift = (current_size - int(after or 0)) - running
    return [SizePoint(since_ms + (i + 1) * width, max(0, s + shift)) for i, s in enumerate(sizes)]


def members_page(db: Database, key: str, *, is_audience: bool, after: str | None = None,
                 limit: int = 25) -> list[tuple[str, Any, int]]:
    """Profiles counted in the computation, by profile id after ``after``: (id, value, updated_at_ms)."""
    conn = db.thread_connection()
    try:
        rows = conn.fetchall(
            "SELECT profile_id, value, updated_at_ms FROM computed_values WHERE computation_key = ? AND "
            f"{_counts(is_audience, 'value')} AND profile_id > ? ORDER BY profile_id LIMIT ?",
            (key, after or "", limit))
    finally:
        _end(conn)
    return [(str(p), None if v is None else orjson.loads(v), int(at)) for p, v, at in rows]


def identifier_breakdown(db: Database, key: str, *, is_audience: bool) -> dict[str, int]:
    """How many members hold each id type (a member with two emails counts once for email).

    What a destination can match on: an audience of 1,000 with 400 emails reaches at most 400
    profiles in an email-keyed list destination.
    """
    conn = db.thread_connection()
    try:
        rows = conn.fetchall(
            "SELECT e.id_type, COUNT(DISTINCT e.profile_id) FROM computed_values v JOIN profile_external_ids e "
            f"ON e.profile_id = v.profile_id WHERE v.computation_key = ? AND {_counts(is_audience, 'v.value')} "
            "GROUP BY e.id_type ORDER BY 2 DESC, 1", (key,))
    finally:
        _end(conn)
    return {str(t): int(n) for t, n in rows}
