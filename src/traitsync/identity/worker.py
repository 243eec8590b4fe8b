"""The identity worker: consume the event log from a checkpoint and keep the graph current.

Each chunk is read, resolved against the cache and written in ONE transaction together with
the checkpoint, so a crash anywhere replays exactly the unsaved chunk. The cache is dropped
whenever a transaction fails or someone else edited the graph (identifier deletion), because
then it may no longer match the store.
"""

from __future__ import annotations

import threading
import time

from traitsync.identity.cache import graph_generation, prefetch
from traitsync.identity.config import IdentityConfig
from traitsync.identity.pending import Pending
from traitsync.identity.resolver import Resolver
from traitsync.log.event_log import Checkpoints, EventLog
from traitsync.spec.event import StoredEvent
from traitsync.store.database import Connection, Database
from traitsync.store.migrate import migrate

CONSUMER = "identity"
WORKER_LOCK_KEY = 7352010
#: Advisory locks are database-wide; keying on the schema keeps stores in other schemas independent.
WORKER_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(current_schema()), ?)"
#: Beyond this many cached identifiers the cache is dropped at a chunk boundary (a crude bound).
MAX_CACHED_IDENTIFIERS = 3_000_000


class IdentityWorker:
    """Resolves the log into profiles. ``log_db`` lets ``rebuild`` read one store and write another."""

    def __init__(self, db: Database, config: IdentityConfig, *, log_db: Database | None = None,
                 chunk_size: int = 1000, consumer: str = CONSUMER) -> None:
        migrate(db)
        self.db = db
        self.config = config
        self.log = EventLog(log_db or db)
        self._separate_log = log_db is not None and log_db.url != db.url
        self.chunk_size = chunk_size
        self.consumer = consumer
        self.resolver = Resolver(config)
        self._generation: int | None = None
        self._conn: Connection | None = None
        self._log_conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.db.connect()
        return self._conn

    def close(self) -> None:
        for conn in (self._conn, self._log_conn):
            if conn is not None:
                conn.close()
        self._conn = self._log_conn = None

    def run_once(self, max_events: int | None = None, *, until_offset: int | None = None) -> int:
        """Process what is in the log now (at most ``max_events``); returns how many were processed."""
        done = 0
        while max_events is None or done < max_events:
            size = self.chunk_size if max_events is None else min(self.chunk_size, max_events - done)
            n = self._chunk(size, until_offset)
            if n == 0:
                break
            done += n
        return done

    def run_forever(self, stop_event: threading.Event, idle_sleep: float = 0.2) -> None:
        while not stop_event.is_set():
            if self.run_once(self.chunk_size * 10) == 0:
                stop_event.wait(idle_sleep)
        self.close()

    def _chunk(self, size: int, until_offset: int | None) -> int:
        conn = self._connection()
        try:
            with conn.transaction():
                if conn.dialect == "postgresql":
                    conn.execute(WORKER_LOCK_SQL, (WORKER_LOCK_KEY,))
                generation = graph_generation(conn)
                if generation != self._generation:
                    self.resolver.clear()
                    self._generation = generation
                elif len(self.resolver.idmap) > MAX_CACHED_IDENTIFIERS:
                    self.resolver.clear()
                after = Checkpoints.get(conn, self.consumer)
                events = self._read(conn, after, size)
                if until_offset is not None:
                    events = [e for e in events if e.offset <= until_offset]
                if not events:
                    return 0
                extracted, missing = self.resolver.keys_of(events)
                prefetch(conn, self.resolver, missing)
                self.resolver.pending = Pending()
                for event, ex in extracted:
                    self.resolver.resolve(event, ex)
                self.resolver.pending.flush(conn)
                self.resolver.pending = Pending()
                Checkpoints.set(conn, self.consumer, events[-1].offset)
            return len(events)
        except BaseException:
            self.resolver.clear()
            self._generation = None
            raise

    def _read(self, conn: Connection, after: int, size: int) -> list[StoredEvent]:
        if not self._separate_log:
            return self.log.read(after, size, conn=conn)
        if self._log_conn is None:
            self._log_conn = self.log.db.connect()
        events = self.log.read(after, size, conn=self._log_conn)
        if self._log_conn.dialect == "postgresql":
            self._log_conn.commit()
        return events


def run_until_caught_up(worker: IdentityWorker, timeout: float = 60.0) -> int:
    """Test and CLI helper: process until the log head is reached."""
    deadline = time.monotonic() + timeout
    total = 0
    while time.monotonic() < deadline:
        n = worker.run_once()
        total += n
        if n == 0:
            return total
    return total
