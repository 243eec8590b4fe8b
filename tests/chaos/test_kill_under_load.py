"""Chaos under load: kill -9 of the workers and of the whole server, and a database outage.

Under the load of ``load.py`` the test SIGKILLs the worker process (its supervisor restarts it)
twice, then the whole server (restarted by the test). The outage test cuts PostgreSQL mid-load:
the API answers 503 and stores nothing meanwhile, and once the database is back the workers
carry on by themselves. Both then check the rules of ``load.py``: no acknowledged change lost,
entries before exits.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.activation_flow.conftest import wait_for
from tests.chaos.load import Load, chaos_config, check_memberships, wait_delivered
from tests.conftest import PG_URL, ServerProcess
from tests.delivery.conftest import Receiver, receiver  # noqa: F401  (fixture)
from tests.ingest.test_storage_failure import TcpProxy

pytestmark = pytest.mark.slow  # spawns server subprocesses


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
    path.write_text(chaos_config(receiver.url))
    yield path


def test_kill_9_of_workers_and_server_under_load_loses_no_acknowledged_change(
        db_url: str, server_factory: type[ServerProcess], config_path: Path, receiver: Receiver) -> None:  # noqa: F811
    # (the database fixture first, so that its teardown comes after the servers are killed)
    server = server_factory(config_path, db_url).start(timeout=90)  # a shared, busy machine
    with Load(server.base_url, receiver) as load:
        for round_no in (1, 2):  # the worker process, twice: its supervisor restarts it
            load.wait_acked(100 * round_no, refunded=20 * round_no)
            os.kill(_worker_child(server), signal.SIGKILL)
        load.wait_acked(300, refunded=60)
        server.kill()  # API and workers at once
        restarted = server_factory(config_path, db_url).start(timeout=90)  # a shared, busy machine
        load.base_url = restarted.base_url
        load.wait_acked(len(load.acked) + 100, refunded=len(load.refunded) + 20)
    wait_delivered(load, receiver)
    entries, exits = check_memberships(load, receiver)
    print(f"chaos[{db_url.split(':')[0]}]: {len(load.acked)} acknowledged buyers, {len(load.refunded)} refunded; "
          f"{entries} entries and {exits} exits delivered in {len(receiver.messages())} messages; "
          f"statuses {load.statuses}")
    restarted.stop()


def test_postgresql_outage_under_load_then_workers_recover(
        pg_url: str, server_factory: type[ServerProcess], config_path: Path, receiver: Receiver) -> None:  # noqa: F811
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    host_port = PG_URL.split("@", 1)[1].split("/", 1)[0]
    server = server_factory(config_path, pg_url.replace(host_port, f"127.0.0.1:{proxy.port}", 1)).start(timeout=90)
    with Load(server.base_url, receiver) as load:
        load.wait_acked(100, refunded=20)
        proxy.cut()
        assert wait_for(lambda: load.statuses.get(503, 0) >= 3, 30), load.statuses
        during = len(load.acked)
        time.sleep(1)
        assert len(load.acked) == during  # nothing acknowledged while the database is away
        proxy.start()
        load.wait_acked(during + 100, refunded=len(load.refunded) + 20)
    wait_delivered(load, receiver)
    check_memberships(load, receiver)
    proxy.cut()
