"""Shared delivery fixtures: a scriptable local HTTP receiver and databases (SQLite file + PostgreSQL).

The receiver is a real threaded ``http.server`` on 127.0.0.1 with a random port. Tests script
its answers (status + headers, hang past the client's timeout, reset the connection) either as
a queue consumed one request at a time or as rules matched against the request body; it
records every request with its arrival time, and checks the webhook signature when given the
shared secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import socket
import struct
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
import pytest

from traitsync.store import Database, migrate

PG_URL = os.environ.get("TRAITSYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


@dataclass(frozen=True)
class Reply:
    """What the receiver does with one request: answer ``status``, or ``hang`` / ``reset``."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b'{"ok":true}'
    action: str = "answer"  # answer | hang | reset
    delay: float = 0.0  # seconds before answering (real vendors take 100-500 ms)


HANG = Reply(action="hang")
RESET = Reply(action="reset")


@dataclass
class Received:
    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    reply: Reply
    signature_ok: bool | None

    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.script: list[Reply] = []
        self.rules: list[Callable[[Any], Reply | None]] = []
        self.secret: str | None = None
        self.lock = threading.Lock()
        self.release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return None

            def _handle(self) -> None:
                at = time.monotonic()
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                if len(body) < length:  # the sender died mid-request (kill -9): no vendor takes half a body
                    self.close_connection = True
                    return
                reply = receiver._decide(body)
                signature_ok = None
                if receiver.secret is not None:
                    expected = hmac.new(receiver.secret.encode(), body, hashlib.sha256).hexdigest()
                    signature_ok = hmac.compare_digest(expected, self.headers.get("X-Signature", ""))
                with receiver.lock:
                    receiver.requests.append(Received(at, self.command, self.path, dict(self.headers.items()),
                                                      body, reply, signature_ok))
                if reply.action == "hang":
                    receiver.release.wait(10)
                    self.close_connection = True
                    return
                if reply.action == "reset":
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                    self.close_connection = True
                    return
                if reply.delay:
                    time.sleep(reply.delay)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)

            do_POST = do_PUT = do_PATCH = _handle

            def finish(self) -> None:
                try:
                    super().finish()
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _decide(self, body: bytes) -> Reply:
        with self.lock:
            if self.script:
                return self.script.pop(0)
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        for rule in self.rules:
            reply = rule(data)
            if reply is not None:
                return reply
        return Reply()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def messages(self) -> list[dict[str, Any]]:
        """Every message body received with a 2xx answer, flattening webhook arrays."""
        out: list[dict[str, Any]] = []
        for r in self.requests:
            if r.reply.action != "answer" or r.reply.status >= 300:
                continue
            data = r.json()
            if isinstance(data, dict) and "batch" in data:
                data = data["batch"]
            out.extend(data if isinstance(data, list) else [data])
        return out

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.thread.start()
    try:
        yield r
    finally:
        r.close()


def pg_schema_url(base: str, schema: str) -> str:
    sep = "&" if "?" in base else "?"
    return f"{base}{sep}options={quote('-csearch_path=' + schema)}"


@pytest.fixture
def pg_db() -> Iterator[Database]:
    """A fresh schema on the test PostgreSQL; unreachable PostgreSQL FAILS the test (never skips)."""
    schema = "ts_" + uuid.uuid4().hex[:12]
    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.Error as exc:
        pytest.fail(f"PostgreSQL at {PG_URL} is unreachable (set TRAITSYNC_TEST_PG_URL): {exc}")
    admin.execute(f"CREATE SCHEMA {schema}")
    db = Database(pg_schema_url(PG_URL, schema))
    try:
        migrate(db)
        yield db
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Database:
    db = Database(f"sqlite:///{tmp_path / 'traitsync.db'}")
    migrate(db)
    return db


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    """Every outbox/worker test runs on a real SQLite file and on real PostgreSQL."""
    name = "sqlite_db" if request.param == "sqlite" else "pg_db"
    database: Database = request.getfixturevalue(name)
    return database
