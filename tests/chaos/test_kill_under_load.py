"""Chaos under load: kill -9 of the workers and of the whole server, and a database outage.

Clients keep posting new buyers while the test SIGKILLs the worker process (its supervisor
restarts it) twice, then the whole server (restarted by the test). Afterwards every buyer whose
event was acknowledged must have reached the destination as "Audience Entered" at least once.
The outage test cuts PostgreSQL mid-load: the API answers 503 and stores nothing meanwhile, and
once the database is back the workers carry on by themselves, so the buyers acknowledged
before and after the outage are all delivered.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.activation_flow.conftest import wait_for
from tests.conftest import PG_URL, ServerProcess
from tests.delivery.conftest import Receiver, receiver  # noqa: F401  (fixture)
from tests.ingest.test_storage_failure import TcpProxy

pytestmark = pytest.mark.slow  # spawns server subprocesses


def _config(url: str) -> str:
    return f"""\
space_id: spa_test
sources: [{{id: src_web, write_key: web-key}}]
audiences:
  - key: buyers
    condition: {{performed: {{event: Order Completed, at_least: 1}}}}
destinations:
  - id: dst_hook
    kind: webhook
    rate_limit: 1000
    settings: {{url: "{url}/hook", batch_size: 100}}
    connections: [{{computation: buyers, send: [track]}}]
"""


class Load:
    """Client threads posting batches of new buyers to whichever server is current."""

    def __init__(self, base_url: str, clients: int = 3) -> None:
        self.base_url = base_url
        self.acked: list[str] = []
        self.statuses: dict[int, int] = {}
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(c,), daemon=True) for c in range(clients)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(15)

    def _run(self, client: int) -> None:
        n = 0
        while not self.stop.is_set():
            users = [f"c{client}-{n}-{i}" for i in range(20)]
            n += 1
            batch = [{"type": "track", "userId": u, "event": "Order Completed", "messageId": f"m-{u}"}
                     for u in users]
            try:
                response = httpx.post(self.base_url + "/v1/batch", json={"batch": batch}, auth=("web-key", ""),
                                      timeout=10)
            except httpx.HTTPError:
                time.sleep(0.1)  # the server is down: this batch was not acknowledged
                continue
            with self.lock:
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                if response.status_code == 200 and response.json().get("success"):
                    self.acked.extend(users)
            time.sleep(0.02)

    def wait_acked(self, n: int, timeout: float = 60) -> None:
        assert wait_for(lambda: len(self.acked) >= n, timeout), (len(self.acked), self.statuses)


def _entered(receiver: Receiver) -> list[str]:  # noqa: F811
    return [m["userId"] for m in receiver.messages() if m.get("event") == "Audience Entered"]


def _children(pid: int) -> list[int]:
    """Child processes, whichever thread started them (the supervisor restarts from its own)."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def _worker_child(server: ServerProcess) -> int:
    assert server.proc is not None
    pid = server.proc.pid
    assert wait_for(lambda: _children(pid) != [], 20)
    return _children(pid)[0]


@pytest.fixture
def config_path(tmp_path: Path, receiver: Receiver) -> Iterator[Path]:  # noqa: F811
    path = tmp_path / "traitsync.yaml"
    path.write_text(_config(receiver.url))
    yield path


def test_kill_9_of_workers_and_server_under_load_loses_no_acknowledged_change(
        server_factory: type[ServerProcess], config_path: Path, db_url: str, receiver: Receiver) -> None:  # noqa: F811
    server = server_factory(config_path, db_url).start()
    with Load(server.base_url) as load:
        for round_no in (1, 2):  # the worker process, twice: its supervisor restarts it
            load.wait_acked(200 * round_no)
            os.kill(_worker_child(server), signal.SIGKILL)
        load.wait_acked(600)
        server.kill()  # API and workers at once
        restarted = server_factory(config_path, db_url).start(timeout=90)  # a shared, busy machine
        load.base_url = restarted.base_url
        load.wait_acked(len(load.acked) + 200)
    acked = set(load.acked)
    assert wait_for(lambda: acked <= set(_entered(receiver)), 120), len(acked - set(_entered(receiver)))
    entered = _entered(receiver)
    print(f"chaos[{db_url.split(':')[0]}]: {len(acked)} acknowledged buyers, {len(entered)} entries delivered, "
          f"{len(entered) - len(set(entered))} repeated, statuses {load.statuses}")
    restarted.stop()


def test_postgresql_outage_under_load_then_workers_recover(
        server_factory: type[ServerProcess], config_path: Path, pg_url: str, receiver: Receiver) -> None:  # noqa: F811
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    host_port = PG_URL.split("@", 1)[1].split("/", 1)[0]
    server = server_factory(config_path, pg_url.replace(host_port, f"127.0.0.1:{proxy.port}", 1)).start()
    with Load(server.base_url) as load:
        load.wait_acked(200)
        proxy.cut()
        assert wait_for(lambda: load.statuses.get(503, 0) >= 3, 30), load.statuses
        during = len(load.acked)
        time.sleep(1)
        assert len(load.acked) == during  # nothing acknowledged while the database is away
        proxy.start()
        load.wait_acked(during + 200)
    acked = set(load.acked)
    assert wait_for(lambda: acked <= set(_entered(receiver)), 120), len(acked - set(_entered(receiver)))
    proxy.cut()
