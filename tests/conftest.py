"""Fixtures shared by every test package: real databases and real server processes."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest

from traitsync.store.migrate import forget_migrations

PG_URL = os.environ.get("TRAITSYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _pg_admin() -> psycopg.Connection:
    try:
        return psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:  # fail loudly: these tests must not silently skip
        pytest.fail(f"PostgreSQL is required at {PG_URL} (set TRAITSYNC_TEST_PG_URL): {exc}")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A PostgreSQL URL whose search_path is a fresh schema, dropped afterwards."""
    schema = f"ts_{secrets.token_hex(6)}"
    with _pg_admin() as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    sep = "&" if "?" in PG_URL else "?"
    forget_migrations()
    try:
        yield f"{PG_URL}{sep}options={quote(f'-csearch_path={schema}')}"
    finally:
        forget_migrations()
        with _pg_admin() as admin:
            admin.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'traitsync.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Runs a test once on a SQLite file and once on a PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'traitsync.db'}"
    else:
        yield request.getfixturevalue("pg_url")


BASIC_CONFIG = """\
space_id: spa_test
sources:
  - id: src_web
    name: Website
    write_key: web-key
  - id: src_ios
    write_key: ios-key
profile_api:
  access_secret: profile-secret
management_api:
  token: admin-token
"""


class ServerProcess:
    """``traitsync serve`` in a subprocess on a free port: the real thing, over a real socket."""

    def __init__(self, config_path: Path, database_url: str, *, extra_env: dict[str, str] | None = None,
                 workers: int = 1, role: str = "all", log_level: str = "warning") -> None:
        self.config_path = config_path
        self.database_url = database_url
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.extra_env = extra_env or {}
        self.workers = workers
        self.role = role
        self.log_level = log_level
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = config_path.parent / f"server-{self.port}.log"

    def start(self, timeout: float = 90.0) -> ServerProcess:
        env = {**os.environ, "TRAITSYNC_LOG_FORMAT": "json", **self.extra_env}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "traitsync.cli", "serve", "-c", str(self.config_path),
                 "--database-url", self.database_url, "--port", str(self.port), "--workers", str(self.workers),
                 "--role", self.role, "--log-level", self.log_level],
                stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/healthz", timeout=1).status_code in (200, 503):
                    return self
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "traitsync.yaml"
    path.write_text(BASIC_CONFIG)
    return path


@pytest.fixture
def server_factory(tmp_path: Path) -> Iterator[type[ServerProcess]]:
    started: list[ServerProcess] = []

    class Tracked(ServerProcess):
        def start(self, timeout: float = 90.0) -> ServerProcess:
            started.append(self)
            return super().start(timeout)

    yield Tracked
    for server in started:
        server.kill()
