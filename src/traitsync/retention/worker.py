"""Delete operational rows past their retention, a bounded number per table per run.

Each table gets one ``DELETE ... WHERE id IN (SELECT id ... ORDER BY id LIMIT batch)`` per run,
in its own short transaction, so the janitor never holds a long lock against ingest or
delivery, and a large backlog (retention just turned on) drains over several runs instead of
in one huge transaction. What is kept, and why:

* ``rejections`` older than ``rejections`` (the source debugger's look-back);
* ``delivery_attempts`` older than ``delivery_attempts``, and the attempts of deleted rows;
* ``delivery_outbox`` rows delivered (and already folded by activation) or filtered, finished
  before ``delivered_outbox``; pending, retrying and dead rows are never deleted here;
* ``computation_results`` older than ``computation_results`` and already read by activation
  (its checkpoint), when activation runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from traitsync.config.models import RetentionConfig, duration_ms
from traitsync.log.event_log import Checkpoints
from traitsync.store.database import Connection, Database

log = structlog.get_logger("traitsync.retention")

ACTIVATION_RESULTS = "activation.results"


@dataclass
class PurgeReport:
    deleted: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.deleted.values())


def _delete(conn: Connection, table: str, key: str, where: str, params: tuple[object, ...], batch: int) -> int:
    with conn.transaction():
        cur = conn.execute(f'DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {where}'
                           f" ORDER BY {key} LIMIT ?)", (*params, batch))
        return max(int(cur.rowcount or 0), 0)


def purge(db: Database, config: RetentionConfig, *, now_ms: int, activation_runs: bool) -> PurgeReport:
    """One run: at most ``config.batch`` rows per table."""
    report = PurgeReport()
    batch = config.batch
    conn = db.connect()
    try:
        report.deleted["rejections"] = _delete(
            conn, "rejections", "id", "received_at_ms < ?", (now_ms - duration_ms(config.rejections),), batch)
        cutoff = now_ms - duration_ms(config.delivered_outbox)
        with conn.transaction():
            ids = [int(r[0]) for r in conn.fetchall(
                "SELECT id FROM delivery_outbox WHERE ((state = 'delivered' AND applied = ?) OR state = 'filtered')"
                " AND finished_at_ms < ? ORDER BY id LIMIT ?", (True, cutoff, batch))]
            for start in range(0, len(ids), 400):
                part = ids[start:start + 400]
                marks = ", ".join("?" for _ in part)
                conn.execute(f"DELETE FROM delivery_attempts WHERE outbox_id IN ({marks})", tuple(part))
                conn.execute(f"DELETE FROM delivery_outbox WHERE id IN ({marks})", tuple(part))
        report.deleted["delivery_outbox"] = len(ids)
        report.deleted["delivery_attempts"] = _delete(
            conn, "delivery_attempts", "id", "at_ms < ?", (now_ms - duration_ms(config.delivery_attempts),), batch)
        results_cutoff = now_ms - duration_ms(config.computation_results)
        where: str = "at_ms < ?"
        params: tuple[object, ...] = (results_cutoff,)
        if activation_runs:
            read = Checkpoints.get(conn, ACTIVATION_RESULTS)
            conn.commit()
            where, params = 'at_ms < ? AND "offset" <= ?', (results_cutoff, read)
        report.deleted["computation_results"] = _delete(conn, "computation_results", '"offset"', where, params, batch)
    finally:
        conn.close()
    return report


class RetentionWorker:
    """Runs ``purge`` every ``config.every``; a run that hit the batch limit is followed at once."""

    name = "retention"

    def __init__(self, db: Database, config: RetentionConfig, *, activation_runs: bool,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.config = config
        self.activation_runs = activation_runs
        self.clock = clock
        self.poll_interval = duration_ms(config.every) / 1000

    def run_once(self) -> PurgeReport:
        report = purge(self.db, self.config, now_ms=int(self.clock() * 1000), activation_runs=self.activation_runs)
        if report.total:
            log.info("retention run", **report.deleted)
        return report

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            report = self.run_once()
            full = any(n >= self.config.batch for n in report.deleted.values())
            stop.wait(0.05 if full else self.poll_interval)
