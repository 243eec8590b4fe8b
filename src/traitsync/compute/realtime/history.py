"""What a computation's page shows beyond its summary: size over time and who is in it.

**Size history** is read back from ``computation_results``, the stream of value changes the
engine already writes, so no sampler runs and no table grows: each change that makes a profile
count (an audience turning true, a trait getting a value) adds one, each that undoes it removes
one. :class:`SizeHistory` reads the stream incrementally by offset (its primary key, the way
activation reads it) and keeps the sums per minute for the last days and per hour for all
time, so a poll costs only the rows written since the last one; results are never indexed by
computation for this (an index there would cost the engine on every change). A point is
today's size less the changes after it, which absorbs what the stream cannot show (a
merged-away profile's values are dropped without a change row).

**Members** are paged by profile id. Large computations walk the primary key in order and stop
after a page; small ones use the computation index and sort what little they find (walking the
key would visit every profile to find a few).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import orjson

from traitsync.store.database import Connection, Database

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
#: Minute sums are kept this long; longer ranges are drawn from the hourly sums.
MINUTE_SPAN_MS = 3 * 86_400_000
#: Above this size, a page of members is read in primary-key order (see the module docstring).
KEY_ORDER_FROM = 20_000
_CHUNK = 50_000


def _end(conn: Connection) -> None:
    if conn.dialect == "postgresql":
        conn.commit()


def _counts(is_audience: bool, col: str) -> str:
    return f"{col} = 'true'" if is_audience else f"{col} IS NOT NULL AND {col} <> 'null'"


def _in(klass: str, text: str | None) -> int:
    if klass == "audience":
        return 1 if text == "true" else 0
    return 0 if text is None or text == "null" else 1


@dataclass(frozen=True)
class SizePoint:
    at_ms: int
    size: int


class SizeHistory:
    """Changes of size per computation, read incrementally from the results stream (thread-safe)."""

    def __init__(self, db: Database, *, clock: Any = time.time) -> None:
        self.db = db
        self.clock = clock
        self._cursor = 0
        self._minutes: dict[str, dict[int, int]] = {}
        self._hours: dict[str, dict[int, int]] = {}
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Fold in the rows written since the last call."""
        with self._lock:
            while True:
                conn = self.db.thread_connection()
                try:
                    rows = conn.fetchall(
                        'SELECT "offset", computation_key, computation_class, old_value, new_value, at_ms '
                        'FROM computation_results WHERE "offset" > ? ORDER BY "offset" LIMIT ?',
                        (self._cursor, _CHUNK))
                finally:
                    _end(conn)
                for offset, key, klass, old, new, at in rows:
                    delta = _in(klass, new) - _in(klass, old)
                    if delta:
                        minute, hour = int(at) // MINUTE_MS, int(at) // HOUR_MS
                        per_minute = self._minutes.setdefault(key, {})
                        per_minute[minute] = per_minute.get(minute, 0) + delta
                        per_hour = self._hours.setdefault(key, {})
                        per_hour[hour] = per_hour.get(hour, 0) + delta
                    self._cursor = int(offset)
                if len(rows) < _CHUNK:
                    break
            oldest = (int(self.clock() * 1000) - MINUTE_SPAN_MS) // MINUTE_MS
            for per_minute in self._minutes.values():
                for minute in [m for m in per_minute if m < oldest]:
                    del per_minute[minute]

    def series(self, key: str, *, current_size: int, since_ms: int, until_ms: int,
               buckets: int = 60) -> list[SizePoint]:
        """``buckets`` points over ``[since_ms, until_ms)``, each the size at its bucket's end.

        Ranges inside the minute window are exact to the minute; longer ones to the hour.
        """
        self.refresh()
        buckets = max(1, buckets)
        width = max(1, -(-(until_ms - since_ms) // buckets))
        fine = since_ms >= int(self.clock() * 1000) - MINUTE_SPAN_MS + HOUR_MS
        unit = MINUTE_MS if fine else HOUR_MS
        with self._lock:
            sums = dict((self._minutes if fine else self._hours).get(key, {}))
        # Sizes are walked backwards from now: the size at t is today's less every change after t.
        ends = [since_ms + (i + 1) * width for i in range(buckets)]
        changes = sorted(sums.items(), reverse=True)
        out: list[SizePoint] = []
        size, i = current_size, 0
        for end in reversed(ends):
            while i < len(changes) and changes[i][0] * unit >= end:
                size -= changes[i][1]
                i += 1
            out.append(SizePoint(end, max(0, size)))
        return out[::-1]


def members_page(db: Database, key: str, *, is_audience: bool, size: int, after: str | None = None,
                 limit: int = 25) -> list[tuple[str, Any, int]]:
    """Profiles counted in the computation, by profile id after ``after``: (id, value, updated_at_ms)."""
    # ``computation_key || ''`` keeps the planner off the computation index, so it walks the
    # primary key (profile_id, computation_key) in order and stops after one page.
    key_term = "computation_key || '' = ?" if size >= KEY_ORDER_FROM else "computation_key = ?"
    conn = db.thread_connection()
    try:
        rows = conn.fetchall(
            f"SELECT profile_id, value, updated_at_ms FROM computed_values WHERE {key_term} AND "
            f"{_counts(is_audience, 'value')} AND profile_id > ? ORDER BY profile_id LIMIT ?",
            (key, after or "", limit))
    finally:
        _end(conn)
    return [(str(p), None if v is None else orjson.loads(v), int(at)) for p, v, at in rows]


def identifier_breakdown(db: Database, key: str, *, is_audience: bool) -> dict[str, int]:
    """How many members hold each id type (a member with two emails counts once for email).

    What a destination can match on: an audience of 1,000 with 400 emails reaches at most 400
    profiles in an email-keyed list destination. It joins every member, so callers cache it.
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
