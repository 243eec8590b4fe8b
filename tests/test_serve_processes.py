"""``traitsync serve``: workers in a supervised child that dies with its parent and is restarted."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx

from tests.conftest import ServerProcess
from traitsync.log import Checkpoints
from traitsync.store import Database


def _children(pid: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(entry))
    return out


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] if Path(f"/proc/{pid}").exists() \
        else "X"
    return state != "Z"


def _wait(predicate: object, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.1)
    return False


def test_worker_child_processes_events_dies_with_parent_and_is_restarted(
        server_factory: type[ServerProcess], config_file: Path, sqlite_url: str) -> None:
    server = server_factory(config_file, sqlite_url).start()
    assert server.proc is not None
    assert _wait(lambda: len(_children(server.proc.pid)) == 1)  # type: ignore[union-attr]
    [child] = _children(server.proc.pid)
    response = httpx.post(server.base_url + "/v1/identify", auth=("web-key", ""),
                          json={"userId": "u1", "traits": {"plan": "pro"}})
    assert response.status_code == 200
    conn = Database(sqlite_url).connect()
    assert _wait(lambda: Checkpoints.get(conn, "identity") >= 1), "the worker child resolved the event"

    os.kill(child, signal.SIGKILL)  # a crash of the worker process alone
    assert _wait(lambda: _children(server.proc.pid) not in ([], [child]))  # type: ignore[union-attr]
    [restarted] = _children(server.proc.pid)
    httpx.post(server.base_url + "/v1/identify", auth=("web-key", ""), json={"userId": "u2"})
    assert _wait(lambda: Checkpoints.get(conn, "identity") >= 2), "the restarted worker goes on"

    server.kill()  # SIGKILL of serve itself: the worker must not outlive it
    assert _wait(lambda: not _alive(restarted), timeout=10), "orphaned worker process"
    conn.close()
