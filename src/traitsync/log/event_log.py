"""The append-only event log: the truth every other stage is derived from.

One interface over SQLite and PostgreSQL. Offsets are assigned in commit order so that a
consumer reading ``offset > checkpoint`` never skips a row that commits later: SQLite has a
single writer by construction, and on PostgreSQL every append takes the same transaction-level
advisory lock before inserting.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from traitsync.errors import StorageUnavailable
from traitsync.spec.event import StoredEvent
from traitsync.spec.validate import Accepted, Rejection, normalise
from traitsync.store.database import Connection, Database
from traitsync.store.migrate import migrate

_APPEND_LOCK_KEY = 7352002
_INSERT_EVENT = (
    'INSERT INTO events (message_id, source_id, type, event, user_id, anonymous_id, timestamp_ms, '
    'received_at_ms, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (message_id) DO NOTHING'
)
_COLUMNS = "message_id, source_id, type, event, user_id, anonymous_id, timestamp_ms, received_at_ms, body"
#: Rows in ``_COLUMNS`` order: what ``append_rows`` takes and ``append_batches`` builds.
EventRow = tuple[str, str, str, str | None, str | None, str | None, int, int, str]
_CREATE_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS _events_stage (seq integer, message_id text, source_id text, type text, "
    "event text, user_id text, anonymous_id text, timestamp_ms bigint, received_at_ms bigint, body text) "
    "ON COMMIT DELETE ROWS"
)
_COPY_STAGE = f"COPY _events_stage (seq, {_COLUMNS}) FROM STDIN"
_MOVE_STAGE = (f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM _events_stage ORDER BY seq "
               "ON CONFLICT (message_id) DO NOTHING")
_INSERT_REJECTION = (
    "INSERT INTO rejections (source_id, received_at_ms, code, message, message_id, batch_index, body) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_SELECT_EVENTS = (
    'SELECT "offset", message_id, source_id, type, event, user_id, anonymous_id, timestamp_ms, '
    "received_at_ms, body FROM events"
)
#: Rejected bodies are kept for the debugger, truncated so a hostile client cannot fill the disk.
MAX_REJECTED_BODY_CHARS = 4096


@dataclass(frozen=True)
class SourceBatch:
    """What one request contributes to an append: its accepted messages and its rejections."""

    source_id: str
    accepted: Sequence[Accepted]
    rejections: Sequence[tuple[Rejection, Any]] = ()


@dataclass(frozen=True)
class AppendResult:
    inserted: int
    duplicates: int


def _is_storage_error(exc: BaseException) -> bool:
    import sqlite3

    if isinstance(exc, sqlite3.Error):
        return True
    try:
        import psycopg

        return isinstance(exc, psycopg.Error)
    except ImportError:  # pragma: no cover - psycopg is a hard dependency
        return False


def row_to_event(row: Sequence[Any]) -> StoredEvent:
    return StoredEvent(
        offset=row[0], message_id=row[1], source_id=row[2], type=row[3], event=row[4],
        user_id=row[5], anonymous_id=row[6], timestamp_ms=row[7], received_at_ms=row[8],
        body=orjson.loads(row[9]),
    )


class EventLog:
    """Append to and read from the log on one database."""

    def __init__(self, db: Database, *, auto_migrate: bool = True) -> None:
        self.db = db
        if auto_migrate:
            migrate(db)

    # -- writing -------------------------------------------------------------------------------
    def append_batches(self, conn: Connection, batches: Sequence[SourceBatch]) -> list[AppendResult]:
        """Insert several requests' events in ONE transaction (group commit); dedup on messageId.

        Raises ``StorageUnavailable`` when the store cannot commit; then nothing was written.
        """
        rows: list[EventRow] = []
        owners: list[int] = []  # index into ``batches`` of each row, to count each request's inserts
        for number, batch in enumerate(batches):
            rows.extend((a.message_id, batch.source_id, a.type, a.event, a.user_id, a.anonymous_id,
                         a.timestamp_ms, a.received_at_ms, orjson.dumps(a.body).decode()) for a in batch.accepted)
            owners.extend([number] * len(batch.accepted))
        try:
            with conn.transaction():
                inserted = self._insert_rows(conn, rows, owners, len(batches))
                now = int(time.time() * 1000)
                for batch in batches:
                    if batch.rejections:
                        conn.executemany(_INSERT_REJECTION, [
                            (batch.source_id, now, r.code, r.message, r.message_id, r.index,
                             _truncated_body(body)) for r, body in batch.rejections
                        ])
        except Exception as exc:
            if _is_storage_error(exc):
                raise StorageUnavailable(f"the event log could not commit: {exc}") from exc
            raise
        return [AppendResult(inserted=n, duplicates=len(b.accepted) - n)
                for b, n in zip(batches, inserted, strict=True)]

    def append_rows(self, conn: Connection, rows: Sequence[EventRow]) -> int:
        """Insert ready-made rows in one transaction, with no validation; returns how many were new.

        The storage ceiling of the ingest benchmark: the same rows and the same statements as
        ``append_batches``, with nothing else.
        """
        with conn.transaction():
            return self._insert_rows(conn, rows, [0] * len(rows), 1)[0]

    def _insert_rows(self, conn: Connection, rows: Sequence[EventRow], owners: Sequence[int],
                     groups: int) -> list[int]:
        """Insert ``rows`` in order inside the caller's transaction; new rows counted by owner."""
        if conn.dialect == "sqlite":
            return _insert_sqlite(conn, rows, owners, groups)
        # Keyed by schema: advisory locks are database-wide, and logs in other schemas (other
        # deployments, parallel tests) must not wait on this one.
        conn.execute("SELECT pg_advisory_xact_lock(?, hashtext(current_schema()))", (_APPEND_LOCK_KEY,))
        return _insert_postgres(conn, rows, owners, groups) if rows else [0] * groups

    def append_messages(self, source_id: str, messages: Iterable[dict[str, Any]], *,
                        received_at_ms: int | None = None, conn: Connection | None = None,
                        keep_received_at: bool = False) -> AppendResult:
        """Validate and append plain Segment messages (imports, tests, other stages' fixtures).

        Invalid messages are recorded as rejections, exactly as the HTTP API would.
        """
        now = received_at_ms if received_at_ms is not None else int(time.time() * 1000)
        accepted: list[Accepted] = []
        rejected: list[tuple[Rejection, Any]] = []
        for i, raw in enumerate(messages):
            checked = normalise(raw, received_at_ms=now, keep_received_at=keep_received_at)
            if isinstance(checked, Rejection):
                checked.index = i
                rejected.append((checked, raw))
            else:
                accepted.append(checked)
        own = conn is None
        connection = conn or self.db.connect()
        try:
            [outcome] = self.append_batches(connection, [SourceBatch(source_id, accepted, rejected)])
        finally:
            if own:
                connection.close()
        return outcome

    # -- reading -------------------------------------------------------------------------------
    def read(self, after_offset: int, limit: int = 1000, *, conn: Connection | None = None) -> list[StoredEvent]:
        """Events with ``offset > after_offset`` in offset order, at most ``limit``."""
        c = conn or self.db.thread_connection()
        rows = c.fetchall(_SELECT_EVENTS + ' WHERE "offset" > ? ORDER BY "offset" LIMIT ?',
                          (after_offset, limit))
        if c.dialect == "postgresql" and conn is None:
            c.commit()  # end the read transaction so the next read sees new commits
        return [row_to_event(r) for r in rows]

    def head(self, *, conn: Connection | None = None) -> int:
        """The largest offset in the log (0 when empty)."""
        c = conn or self.db.thread_connection()
        value = c.scalar('SELECT MAX("offset") FROM events')
        if c.dialect == "postgresql" and conn is None:
            c.commit()
        return int(value or 0)

    def count(self) -> int:
        c = self.db.thread_connection()
        value = c.scalar("SELECT COUNT(*) FROM events")
        if c.dialect == "postgresql":
            c.commit()
        return int(value or 0)

    def by_message_id(self, message_id: str) -> StoredEvent | None:
        c = self.db.thread_connection()
        row = c.fetchone(_SELECT_EVENTS + " WHERE message_id = ?", (message_id,))
        if c.dialect == "postgresql":
            c.commit()
        return None if row is None else row_to_event(row)

    def recent_for_source(self, source_id: str, limit: int = 50) -> list[StoredEvent]:
        c = self.db.thread_connection()
        rows = c.fetchall(_SELECT_EVENTS + ' WHERE source_id = ? ORDER BY "offset" DESC LIMIT ?',
                          (source_id, limit))
        if c.dialect == "postgresql":
            c.commit()
        return [row_to_event(r) for r in rows]

    def recent_rejections(self, source_id: str, limit: int = 50) -> list[dict[str, Any]]:
        c = self.db.thread_connection()
        rows = c.fetchall(
            "SELECT received_at_ms, code, message, message_id, batch_index, body FROM rejections "
            "WHERE source_id = ? ORDER BY id DESC LIMIT ?", (source_id, limit))
        if c.dialect == "postgresql":
            c.commit()
        return [{"received_at_ms": r[0], "code": r[1], "message": r[2], "message_id": r[3],
                 "batch_index": r[4], "body": r[5]} for r in rows]

    def rejection_counts(self) -> dict[str, int]:
        c = self.db.thread_connection()
        rows = c.fetchall("SELECT code, COUNT(*) FROM rejections GROUP BY code ORDER BY code")
        if c.dialect == "postgresql":
            c.commit()
        return {str(code): int(n) for code, n in rows}


def _insert_sqlite(conn: Connection, rows: Sequence[EventRow], owners: Sequence[int], groups: int) -> list[int]:
    counts = [0] * groups
    if groups == 1:
        before = conn.raw.total_changes
        conn.raw.executemany(_INSERT_EVENT, rows)
        counts[0] = int(conn.raw.total_changes - before)
        return counts
    start = 0
    for number in range(groups):  # one executemany per request: each learns its own count
        end = start
        while end < len(owners) and owners[end] == number:
            end += 1
        if end > start:
            before = conn.raw.total_changes
            conn.raw.executemany(_INSERT_EVENT, rows[start:end])
            counts[number] = int(conn.raw.total_changes - before)
        start = end
    return counts


def _insert_postgres(conn: Connection, rows: Sequence[EventRow], owners: Sequence[int], groups: int) -> list[int]:
    """``COPY`` into a session-local staging table, then one ``INSERT ... SELECT ... ON CONFLICT``.

    A multi-row ``INSERT`` spent about 14 times more client CPU per row (binding nine parameters
    each) than ``COPY`` does; ``COPY`` cannot skip duplicates by itself, hence the staging
    table. ``ORDER BY seq`` keeps the offsets in request order; ``RETURNING message_id`` tells each
    request of a group commit how many of its rows were new.
    """
    cur = conn.raw.cursor()
    cur.execute(_CREATE_STAGE)
    with cur.copy(_COPY_STAGE) as copy:
        for seq, row in enumerate(rows):
            copy.write_row((seq, *row))
    counts = [0] * groups
    if groups == 1:
        cur.execute(_MOVE_STAGE)
        counts[0] = max(cur.rowcount, 0)
    else:
        first: dict[str, int] = {}  # a messageId repeated in the group is new only for its first request
        for row, owner in zip(rows, owners, strict=True):
            first.setdefault(row[0], owner)
        cur.execute(_MOVE_STAGE + " RETURNING message_id")
        for (message_id,) in cur.fetchall():
            counts[first[message_id]] += 1
    return counts


def _truncated_body(body: Any) -> str | None:
    if body is None:
        return None
    try:
        text = orjson.dumps(body).decode()
    except TypeError:
        text = repr(body)
    if "writeKey" in text and isinstance(body, dict):
        text = orjson.dumps({k: v for k, v in body.items() if k != "writeKey"}).decode()
    return text[:MAX_REJECTED_BODY_CHARS]


class Checkpoints:
    """Per-consumer offsets, stored beside the data they describe.

    A consumer saves its checkpoint in the SAME transaction as its output, so a crash
    replays exactly the unsaved part and nothing is applied twice.
    """

    @staticmethod
    def get(conn: Connection, consumer: str) -> int:
        value = conn.scalar('SELECT "offset" FROM checkpoints WHERE consumer = ?', (consumer,))
        return int(value or 0)

    @staticmethod
    def set(conn: Connection, consumer: str, offset: int) -> None:
        conn.execute(
            'INSERT INTO checkpoints (consumer, "offset", updated_at_ms) VALUES (?, ?, ?) '
            'ON CONFLICT (consumer) DO UPDATE SET "offset" = excluded."offset", '
            "updated_at_ms = excluded.updated_at_ms",
            (consumer, offset, int(time.time() * 1000)),
        )

    @staticmethod
    def all(conn: Connection) -> dict[str, int]:
        return {str(c): int(o) for c, o in conn.fetchall('SELECT consumer, "offset" FROM checkpoints')}
