"""Store fixtures for identity and profile tests: a SQLite file and a private PostgreSQL schema.

PostgreSQL tests FAIL (never skip) when the server is unreachable: the suite promises both
backends.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from traitsync.identity import IdentityWorker, identity_config_from_dict
from traitsync.log.event_log import EventLog
from traitsync.store.database import Database
from traitsync.store.migrate import forget_migrations

PG_URL = os.environ.get("TRAITSYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def sqlite_db(tmp_path: Path) -> Database:
    return Database(f"sqlite:///{tmp_path / f'ts-{uuid.uuid4().hex[:8]}.db'}")


class PgSchema:
    """A throwaway schema; the Database URL pins search_path to it."""

    def __init__(self) -> None:
        self.name = f"ts_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {self.name}")
        sep = "&" if "?" in PG_URL else "?"
        self.db = Database(f"{PG_URL}{sep}options=-csearch_path%3D{self.name}")

    def drop(self) -> None:
        with psycopg.connect(PG_URL, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {self.name} CASCADE")
        forget_migrations()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The same test on both backends."""
    if request.param == "sqlite":
        yield sqlite_db(tmp_path)
        return
    schema = PgSchema()
    try:
        yield schema.db
    finally:
        schema.drop()


@pytest.fixture
def sqlite(tmp_path: Path) -> Database:
    return sqlite_db(tmp_path)


class Harness:
    """Append messages, run the worker, query the graph: the vocabulary of the identity tests."""

    def __init__(self, db: Database, identity: dict[str, Any] | None = None, chunk_size: int = 1000) -> None:
        self.db = db
        self.log = EventLog(db)
        self.config = identity_config_from_dict(identity)
        self.worker = IdentityWorker(db, self.config, chunk_size=chunk_size)
        self._n = 0

    def send(self, *messages: dict[str, Any], source: str = "src_web") -> None:
        items = []
        for m in messages:
            self._n += 1
            item = {"messageId": f"m{self._n:05d}", "timestamp": "2024-01-01T00:00:00.000Z", **m}
            items.append(item)
        result = self.log.append_messages(source, items)
        assert result.inserted == len(items)

    def run(self) -> int:
        total = 0
        while True:
            n = self.worker.run_once()
            total += n
            if n == 0:
                return total

    def q(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.db.connect()
        try:
            return conn.fetchall(sql, params)
        finally:
            conn.close()

    def profile_of(self, id_type: str, value: str, collection: str = "users") -> str | None:
        rows = self.q("SELECT profile_id FROM profile_external_ids WHERE id_type = ? AND value = ? AND "
                      "collection = ?", (id_type, value, collection))
        return None if not rows else str(rows[0][0])

    def ids_of(self, profile_id: str) -> set[tuple[str, str]]:
        return {(r[0], r[1]) for r in self.q("SELECT id_type, value FROM profile_external_ids WHERE "
                                             "profile_id = ?", (profile_id,))}

    def event_profile(self, message_id: str) -> str | None:
        rows = self.q('SELECT pe.profile_id FROM profile_events pe JOIN events e ON e."offset" = pe."offset" '
                      "WHERE e.message_id = ?", (message_id,))
        return rows[0][0] if rows else None

    def traits(self, profile_id: str) -> dict[str, Any]:
        import orjson

        return {r[0]: orjson.loads(r[1]) for r in self.q(
            "SELECT key, value FROM profile_traits WHERE profile_id = ? AND value IS NOT NULL", (profile_id,))}

    def violations(self) -> list[tuple[str, str | None, str | None]]:
        return [(r[0], r[1], r[2]) for r in self.q(
            "SELECT category, id_type, value FROM identity_audit WHERE action = 'violation' ORDER BY id")]

    def close(self) -> None:
        self.worker.close()


@pytest.fixture
def harness(db: Database) -> Iterator[Callable[..., Harness]]:
    made: list[Harness] = []

    def make(identity: dict[str, Any] | None = None, chunk_size: int = 1000) -> Harness:
        h = Harness(db, identity, chunk_size)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
