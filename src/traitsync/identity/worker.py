"""The identity worker: consume the event log from a checkpoint and keep the graph current.

Each chunk is read, resolved against the cache and written in ONE transaction together with
the checkpoint, so a crash anywhere replays exactly the unsaved chunk. The cache is dropped
whenever a transaction fails or someone else edited the graph (identifier deletion), because
then it may no longer match the store.

The worker reads raw log rows rather than ``EventLog.read``'s ``StoredEvent``s: decoding every
body was the largest single cost of a chunk, and most bodies hold no identifier beyond the
``user_id``/``anonymous_id`` columns (see ``RowExtractor`` for why skipping them is exact).
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import orjson
import structlog

from traitsync.identity.cache import graph_generation, prefetch
from traitsync.identity.config import IdentityConfig
from traitsync.identity.extract import Extracted, RowExtractor, extract_body
from traitsync.identity.pending import Pending
from traitsync.identity.resolver import ACCOUNTS, USERS, Key, Resolver
from traitsync.log.event_log import Checkpoints, EventLog
from traitsync.store.database import Connection, Database
from traitsync.store.migrate import migrate
from traitsync.workers import wake_all

log = structlog.get_logger("traitsync.identity")

CONSUMER = "identity"
WORKER_LOCK_KEY = 7352010
#: Advisory locks are database-wide; keying on the schema keeps stores in other schemas independent.
WORKER_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(current_schema()), ?)"
#: Beyond this many cached identifiers the cache is dropped at a chunk boundary (a crude bound).
MAX_CACHED_IDENTIFIERS = 3_000_000
#: Only the columns resolution uses; ``received_at_ms`` and the rest are never read.
_SELECT_ROWS = ('SELECT "offset", message_id, source_id, type, event, user_id, anonymous_id, timestamp_ms, body '
                'FROM events WHERE "offset" > ? ORDER BY "offset" LIMIT ?')
LogRow = tuple[int, str, str, str, "str | None", "str | None", "str | None", int, str]


@contextmanager
def _no_gc() -> Iterator[None]:
    """Pause the cyclic garbage collector for one chunk.

    A chunk allocates several small containers per event (rows, keys, pending rows), none of
    them cyclic, so automatic collections free nothing; but each one walks the young objects and,
    as the cache grows, the long-lived ones too. Measured: a third of extraction's time. Reference
    counting still frees everything; collection simply resumes after the chunk.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class RowEvent:
    """The fields of a log row that resolution reads (``resolver.EventFields``), built cheaply."""

    __slots__ = ("event", "message_id", "offset", "source_id", "timestamp_ms", "traits", "type")

    def __init__(self, offset: int, message_id: str, source_id: str, type: str, event: str | None,
                 timestamp_ms: int, traits: dict[str, Any]) -> None:
        self.offset = offset
        self.message_id = message_id
        self.source_id = source_id
        self.type = type
        self.event = event
        self.timestamp_ms = timestamp_ms
        self.traits = traits


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
        self.extractor = RowExtractor(config)
        self._generation: int | None = None
        self._conn: Connection | None = None
        self._log_conn: Connection | None = None

    def _connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.db.connect()
            if self._conn.dialect == "postgresql":
                # psycopg prepares a statement server-side after 5 runs, and PostgreSQL may then
                # keep a generic plan made while the graph tables were nearly empty: the chunk's
                # identifier lookups turned into sequential scans (0.3 s each at 200k events).
                # Planning each of the few statements per chunk afresh costs far less.
                self._conn.raw.prepare_threshold = None
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

    #: Seconds to wait after a failed round (the store down, the disk full) before the next one.
    error_pause = 1.0

    def run_forever(self, stop_event: threading.Event, idle_sleep: float = 0.2) -> None:
        """Resolve until ``stop_event``, retrying after an error as every polling stage does.

        A failed round drops the connection: it may be the one a database restart killed, and
        keeping it meant "the connection is closed" on every round after an outage.
        """
        try:
            while not stop_event.is_set():
                try:
                    resolved = self.run_once(self.chunk_size * 10)
                except Exception:
                    log.exception("identity round failed; retrying")
                    self.close()
                    stop_event.wait(self.error_pause)
                    continue
                if resolved == 0:
                    stop_event.wait(idle_sleep)
                else:
                    wake_all(self.downstream)
        finally:
            self.close()

    #: Called after a round that resolved events (``build_stages`` wires the engine's ``wake``).
    downstream: Sequence[Callable[[], None]] = ()

    name = "identity"
    poll_interval = 0.05

    def run(self, stop: threading.Event) -> None:
        """The worker shape every stage shares (``traitsync.workers``)."""
        self.run_forever(stop, self.poll_interval)

    def _chunk(self, size: int, until_offset: int | None) -> int:
        conn = self._connection()
        try:
            with _no_gc(), conn.transaction():
                if conn.dialect == "postgresql":
                    conn.execute(WORKER_LOCK_SQL, (WORKER_LOCK_KEY,))
                generation = graph_generation(conn)
                if generation != self._generation:
                    self.resolver.clear()
                    self._generation = generation
                elif len(self.resolver.idmap) > MAX_CACHED_IDENTIFIERS:
                    self.resolver.clear()
                after = Checkpoints.get(conn, self.consumer)
                rows = self._read(conn, after, size)
                if until_offset is not None:
                    rows = [r for r in rows if r[0] <= until_offset]
                if not rows:
                    return 0
                extracted, missing = self._extract(rows)
                prefetch(conn, self.resolver, missing)
                self.resolver.load_links = lambda user: _links_in_store(conn, user)
                self.resolver.pending = Pending()
                resolve = self.resolver.resolve_event
                for event, ex in extracted:
                    resolve(event, ex)
                self.resolver.pending.flush(conn)
                self.resolver.pending = Pending()
                Checkpoints.set(conn, self.consumer, rows[-1][0])
            return len(rows)
        except BaseException:
            self.resolver.clear()
            self._generation = None
            raise

    def _extract(self, rows: list[LogRow]) -> tuple[list[tuple[RowEvent, Extracted]], set[Key]]:
        """Extract every row of a chunk, and the identifier keys the cache does not know yet."""
        extractor = self.extractor
        needs_body = extractor.needs_body
        from_columns = extractor.from_columns
        config = self.config
        idmap = self.resolver.idmap
        out: list[tuple[RowEvent, Extracted]] = []
        missing: set[Key] = set()
        for offset, message_id, source_id, kind, name, user_id, anonymous_id, timestamp_ms, body_text in rows:
            if needs_body(kind, body_text):
                body = orjson.loads(body_text)
                ex = extract_body(kind, body, config)
                traits = body.get("traits")
                event = RowEvent(offset, message_id, source_id, kind, name, timestamp_ms,
                                 traits if isinstance(traits, dict) else {})
            else:
                ex = from_columns(user_id, anonymous_id)
                event = RowEvent(offset, message_id, source_id, kind, name, timestamp_ms, {})
            out.append((event, ex))
            for id_type, value in ex.users:
                key = (USERS, id_type, value)
                if key not in idmap:
                    missing.add(key)
            if ex.group_id is not None:
                key = (ACCOUNTS, "group_id", ex.group_id)
                if key not in idmap:
                    missing.add(key)
        return out, missing

    def _read(self, conn: Connection, after: int, size: int) -> list[LogRow]:
        if not self._separate_log:
            return conn.fetchall(_SELECT_ROWS, (after, size))  # type: ignore[return-value]
        if self._log_conn is None:
            self._log_conn = self.log.db.connect()
        rows = self._log_conn.fetchall(_SELECT_ROWS, (after, size))
        if self._log_conn.dialect == "postgresql":
            self._log_conn.commit()
        return rows  # type: ignore[return-value]


def _links_in_store(conn: Connection, user: str) -> list[str]:
    rows = conn.fetchall("SELECT account_profile_id FROM profile_links WHERE user_profile_id = ?", (user,))
    return [str(r[0]) for r in rows]


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
