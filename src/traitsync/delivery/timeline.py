"""Delivered, retried and dead per minute for one destination, read from the attempt log.

Every attempt is one row of ``delivery_attempts`` with its outcome, so a minute's bars are
counts of attempts: ``delivered`` (the attempt succeeded), ``dead`` (it was the last attempt of
a row now dead) and ``retried`` (it failed and the row was, or will be, tried again). The
Delivery Overview counts messages by when they entered delivery; this chart counts attempts by
when they happened, which is what shows an outage and its recovery.
"""

from __future__ import annotations

from dataclasses import dataclass

from traitsync.delivery.outbox import DEAD
from traitsync.store.database import Database

MINUTE_MS = 60_000


@dataclass(frozen=True)
class MinuteCounts:
    at_ms: int
    delivered: int = 0
    retried: int = 0
    dead: int = 0


def per_minute(db: Database, destination_id: str, *, since_ms: int, until_ms: int,
               bucket_ms: int = MINUTE_MS) -> list[MinuteCounts]:
    """One entry per bucket in ``[since_ms, until_ms)``, empty buckets included (charts need them)."""
    start = since_ms - since_ms % bucket_ms
    conn = db.connect()
    try:
        rows = conn.fetchall(
            "SELECT (a.at_ms - ?) / ? AS b,"
            " SUM(CASE WHEN a.outcome = 'ok' THEN 1 ELSE 0 END),"
            " SUM(CASE WHEN a.outcome <> 'ok' AND o.state = ? AND a.attempt = o.attempts THEN 1 ELSE 0 END),"
            " COUNT(*)"
            " FROM delivery_attempts a JOIN delivery_outbox o ON o.id = a.outbox_id"
            " WHERE o.destination_id = ? AND a.at_ms >= ? AND a.at_ms < ? GROUP BY b",
            (start, bucket_ms, DEAD, destination_id, start, until_ms))
        conn.commit()
    finally:
        conn.close()
    counts = {int(b): (int(ok or 0), int(dead or 0), int(n)) for b, ok, dead, n in rows}
    out = []
    for i in range(max(0, -(-(until_ms - start) // bucket_ms))):
        ok, dead, n = counts.get(i, (0, 0, 0))
        out.append(MinuteCounts(start + i * bucket_ms, delivered=ok, retried=n - ok - dead, dead=dead))
    return out
