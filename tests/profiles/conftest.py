"""A real uvicorn server on 127.0.0.1 (random port) serving the Profile API over real SQLite."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI

from traitsync.profiles import ComputedValues, profile_api_router
from traitsync.store.database import Database

SPACE = "spa_test"
SECRET = "sec_profiles"


class Server:
    def __init__(self, db: Database, computed: ComputedValues | None = None, rate: float | None = None) -> None:
        app = FastAPI()
        app.include_router(profile_api_router(db, SPACE, SECRET, computed_values=computed,
                                              rate_limit_per_second=rate))
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning",
                                                    lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", auth=(SECRET, ""))

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.client.get(f"/v1/spaces/{SPACE}/collections/{path}", **kw)

    def stop(self) -> None:
        self.client.close()
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def serve() -> Iterator[Any]:
    servers: list[Server] = []

    def make(db: Database, computed: ComputedValues | None = None, rate: float | None = None) -> Server:
        s = Server(db, computed, rate)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()
