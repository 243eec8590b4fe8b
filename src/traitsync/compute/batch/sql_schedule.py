"""Runs each SQL trait on its schedule (the worker ``serve`` starts when ``sql_traits:`` is set).

The last run of each trait is a checkpoint (``sql_trait:<key>``, epoch ms), so a restart keeps
the cadence instead of querying the warehouse at every start. A failing query is logged and
recorded on the trait's ``computations`` row (status Failed) and retried at the next period.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog

from traitsync.compute.batch.errors import SqlTraitError
from traitsync.compute.batch.sql_traits import SqlTraitConfig, SqlTraitRun, run_sql_trait
from traitsync.log.event_log import Checkpoints
from traitsync.store.database import Database
from traitsync.workers import PollingWorker

log = structlog.get_logger("traitsync.sql_traits")


def checkpoint_name(key: str) -> str:
    return f"sql_trait:{key}"


class SqlTraitScheduler(PollingWorker):
    name = "sql_traits"
    poll_interval = 30.0

    def __init__(self, db: Database, traits: Sequence[SqlTraitConfig], *,
                 clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.traits = tuple(traits)
        self.clock = clock

    def due(self) -> list[SqlTraitConfig]:
        now = int(self.clock() * 1000)
        conn = self.db.connect()
        try:
            last = Checkpoints.all(conn)
            if conn.dialect == "postgresql":
                conn.commit()
        finally:
            conn.close()
        return [t for t in self.traits
                if checkpoint_name(t.key) not in last or now - last[checkpoint_name(t.key)] >= t.every_seconds * 1000]

    def run_trait(self, trait: SqlTraitConfig) -> SqlTraitRun | None:
        now = int(self.clock() * 1000)
        try:
            result = run_sql_trait(self.db, trait, now_ms=now)
        except SqlTraitError as exc:
            log.warning("sql trait failed", key=trait.key, error=exc.message)
            self.record(trait, now, exc.message)
            return None
        log.info("sql trait ran", key=trait.key, rows=result.rows, matched=result.matched,
                 unmatched=result.unmatched, changed=result.changed)
        self.record(trait, now, None)
        return result

    def record(self, trait: SqlTraitConfig, now: int, error: str | None) -> None:
        conn = self.db.connect()
        try:
            with conn.transaction():
                Checkpoints.set(conn, checkpoint_name(trait.key), now)
                if error is not None:
                    conn.execute("UPDATE computations SET status = 'Failed', error = ? WHERE key = ?",
                                 (error, trait.key))
                else:
                    conn.execute("UPDATE computations SET error = NULL WHERE key = ?", (trait.key,))
        finally:
            conn.close()

    def run_once(self) -> int:
        done = 0
        for trait in self.due():
            self.run_trait(trait)
            done += 1
        return done
