"""An in-process app on a real SQLite/PostgreSQL store, served by uvicorn on a real socket."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from tests.conftest import BASIC_CONFIG, free_port
from traitsync.config import load_config_text
from traitsync.server.app import create_app
from traitsync.server.assemble import assemble
from traitsync.server.project import resolve_project
from traitsync.server.runtime import Runtime
from traitsync.store import Database


class _QuietServer(uvicorn.Server):
    def install_signal_handlers(self) -> None:
        pass


@dataclass
class LiveApp:
    base_url: str
    runtime: Runtime
    server: _QuietServer
    thread: threading.Thread

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def start_live_app(database_url: str, config_text: str = BASIC_CONFIG) -> LiveApp:
    loaded = load_config_text(config_text, file="traitsync.yaml")
    runtime, routers, _ = assemble(resolve_project(loaded), Database(database_url))
    app = create_app(runtime, extra_routers=routers)
    port = free_port()
    server = _QuietServer(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                         loop="asyncio"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    return LiveApp(f"http://127.0.0.1:{port}", runtime, server, thread)


@pytest.fixture
def live(db_url: str) -> Iterator[LiveApp]:
    app = start_live_app(db_url)
    yield app
    app.close()


@pytest.fixture
def live_sqlite(sqlite_url: str) -> Iterator[LiveApp]:
    app = start_live_app(sqlite_url)
    yield app
    app.close()
