"""One small database interface over SQLite (embedded default) and PostgreSQL (production).

We use the DB-API drivers directly on hot paths (sqlite3, psycopg 3) because SQLAlchemy's
per-statement overhead costs more than the insert itself at ingest rates; SQLAlchemy Core owns
the schema and Alembic the migrations. SQL is written once with ``?`` placeholders and
translated for psycopg, and with syntax both engines share (``ON CONFLICT``, ``RETURNING``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from traitsync.errors import ConfigError, StorageUnavailable

Dialect = Literal["sqlite", "postgresql"]
DEFAULT_DATABASE_URL = "sqlite:///.traitsync/traitsync.db"


@dataclass(frozen=True)
class Capabilities:
    """What generic code may rely on, declared per backend instead of branching on names."""

    supports_skip_locked: bool
    max_params: int
    concurrent_writers: bool


CAPABILITIES: dict[Dialect, Capabilities] = {
    "sqlite": Capabilities(supports_skip_locked=False, max_params=32766, concurrent_writers=False),
    "postgresql": Capabilities(supports_skip_locked=True, max_params=65535, concurrent_writers=True),
}


@lru_cache(maxsize=4096)
def _to_pyformat(sql: str) -> str:
    # Our SQL never puts '?' or '%' inside literals, so a plain replace is exact.
    return sql.replace("%", "%%").replace("?", "%s")


def database_url_from_env() -> str:
    return os.environ.get("TRAITSYNC_DATABASE_URL", DEFAULT_DATABASE_URL)


class Connection:
    """A DB-API connection plus the placeholder translation and storage-error mapping."""

    #: Counter naming PostgreSQL server-side cursors (``stream``) uniquely within a session.
    _streams = 0

    def __init__(self, raw: Any, dialect: Dialect) -> None:
        self.raw = raw
        self.dialect: Dialect = dialect

    def _sql(self, sql: str) -> str:
        return sql if self.dialect == "sqlite" else _to_pyformat(sql)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        cur = self.raw.cursor()
        cur.execute(self._sql(sql), params)
        return cur

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> Any:
        """Run ``sql`` once per row; the cursor's ``rowcount`` is the total rows changed."""
        cur = self.raw.cursor()
        cur.executemany(self._sql(sql), list(rows))
        return cur

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        cur = self.execute(sql, params)
        rows: list[tuple[Any, ...]] = cur.fetchall()
        return rows

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        cur = self.execute(sql, params)
        row: tuple[Any, ...] | None = cur.fetchone()
        return row

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.fetchone(sql, params)
        return None if row is None else row[0]

    def stream(self, sql: str, params: Sequence[Any] = (), *, size: int = 10_000) -> Iterator[list[tuple[Any, ...]]]:
        """The rows of a query in chunks of at most ``size``, without holding the whole result.

        PostgreSQL reads through a server-side cursor (psycopg otherwise buffers every row in
        the client), so it must run inside a transaction; the same connection may write to
        other tables between chunks. SQLite's cursor already steps through rows as they are
        fetched. Used where a result can be millions of rows (list syncs).
        """
        if self.dialect == "postgresql":
            Connection._streams += 1
            cur = self.raw.cursor(name=f"traitsync_stream_{Connection._streams}")
        else:
            cur = self.raw.cursor()
        try:
            cur.execute(self._sql(sql), params)
            while True:
                rows: list[tuple[Any, ...]] = cur.fetchmany(size)
                if not rows:
                    return
                yield rows
        finally:
            cur.close()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """Run a block atomically; SQLite takes the write lock up front to avoid upgrade deadlocks."""
        if self.dialect == "sqlite":
            self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            try:
                self.raw.rollback()
            except Exception:  # the connection may be gone; the error that matters is the first
                pass
            raise
        else:
            self.raw.commit()

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        self.raw.rollback()

    def close(self) -> None:
        try:
            self.raw.close()
        except Exception:
            pass


class Database:
    """A database URL and how to open connections to it.

    ``durability`` only matters for SQLite: ``normal`` survives a process crash (WAL,
    synchronous=NORMAL); ``full`` survives power loss (synchronous=FULL).
    """

    def __init__(self, url: str | None = None, *, durability: str = "normal") -> None:
        self.url = url or database_url_from_env()
        parsed = urlparse(self.url)
        scheme = parsed.scheme.split("+")[0]
        if scheme == "sqlite":
            self.dialect: Dialect = "sqlite"
            path = self.url.split(":///", 1)[1] if ":///" in self.url else ""
            if not path or path == ":memory:":
                raise ConfigError("an in-memory SQLite database cannot be shared by the stages; name a file",
                                  key="TRAITSYNC_DATABASE_URL")
            self.path: Path | None = Path(path)
        elif scheme in ("postgresql", "postgres"):
            self.dialect = "postgresql"
            self.path = None
        else:
            raise ConfigError(f"unsupported database URL scheme {scheme!r}; use sqlite:///FILE or "
                              "postgresql://USER@HOST:PORT/DB", key="TRAITSYNC_DATABASE_URL")
        if durability not in ("normal", "full"):
            raise ConfigError("durability must be 'normal' or 'full'", key="durability")
        self.durability = durability
        self.capabilities = CAPABILITIES[self.dialect]
        self._local = threading.local()

    @property
    def pg_dsn(self) -> str:
        return self.url.replace("postgresql+psycopg://", "postgresql://").replace(
            "postgres://", "postgresql://")

    @property
    def sqlalchemy_url(self) -> str:
        if self.dialect == "sqlite":
            return f"sqlite:///{self.path}"
        return self.pg_dsn.replace("postgresql://", "postgresql+psycopg://", 1)

    def connect(self) -> Connection:
        """Open a new connection; raises ``StorageUnavailable`` when the store cannot be reached."""
        if self.dialect == "sqlite":
            assert self.path is not None
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                raw = sqlite3.connect(str(self.path), timeout=30.0, isolation_level=None,
                                      check_same_thread=False)
                raw.execute("PRAGMA journal_mode=WAL")
                sync = "FULL" if self.durability == "full" else "NORMAL"
                raw.execute(f"PRAGMA synchronous={sync}")
                raw.execute("PRAGMA busy_timeout=30000")
                raw.execute("PRAGMA temp_store=MEMORY")
                raw.execute("PRAGMA cache_size=-65536")
                # isolation_level=None is autocommit; transactions are explicit via BEGIN.
                raw.isolation_level = None
            except sqlite3.Error as exc:
                raise StorageUnavailable(f"cannot open SQLite database {self.path}: {exc}") from exc
            return _SqliteConnection(raw, "sqlite")
        import psycopg

        try:
            pg = psycopg.connect(self.pg_dsn, autocommit=False, connect_timeout=5)
        except psycopg.Error as exc:
            raise StorageUnavailable(f"cannot connect to PostgreSQL: {exc}") from exc
        return Connection(pg, "postgresql")

    def thread_connection(self) -> Connection:
        """A connection owned by the calling thread, opened on first use and reused after."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.connect()
            self._local.conn = conn
        return conn

    def drop_thread_connection(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def redacted_url(self) -> str:
        """The URL with any password removed, for logs."""
        parsed = urlparse(self.url)
        if parsed.password:
            return self.url.replace(f":{parsed.password}@", ":***@")
        return self.url


class _SqliteConnection(Connection):
    """SQLite in autocommit mode: commit/rollback only act inside an explicit BEGIN."""

    def commit(self) -> None:
        if self.raw.in_transaction:
            self.raw.commit()

    def rollback(self) -> None:
        if self.raw.in_transaction:
            self.raw.rollback()

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            if self.raw.in_transaction:
                self.raw.rollback()
            raise
        else:
            self.raw.commit()


class OwnedConnection:
    """A worker's own connection: opened on first use, opened again after ``close()``.

    Workers drop the connection after a storage error and carry on; the next call reconnects.
    """

    db: Database
    _conn: Connection | None = None

    def connection(self) -> Connection:
        if self._conn is None:
            self._conn = self.db.connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
