"""SIGKILL the server while clients post: every event answered 200 is in the log afterwards."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx

from tests.conftest import ServerProcess
from traitsync.log import EventLog
from traitsync.store import Database


def _client_loop(base_url: str, client_no: int, acked: list[str], stop: threading.Event) -> None:
    n = 0
    with httpx.Client(base_url=base_url, auth=("web-key", ""), timeout=5) as client:
        while not stop.is_set():
            ids = [f"c{client_no}-b{n}-{i}" for i in range(50)]
            batch = [{"type": "track", "userId": f"u{i}", "event": "Tick", "messageId": mid,
                      "properties": {"n": n}} for i, mid in enumerate(ids)]
            n += 1
            try:
                response = client.post("/v1/batch", json={"batch": batch})
            except httpx.HTTPError:
                return  # the server died mid-request: this batch was never acknowledged
            if response.status_code == 200:
                acked.extend(ids)


def _kill_mid_stream_and_check(server_factory: type[ServerProcess], config_file: Path, database_url: str) -> None:
    server = server_factory(config_file, database_url).start()
    acked: list[str] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_client_loop, args=(server.base_url, c, acked, stop)) for c in range(6)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 20
    while len(acked) < 3000 and time.monotonic() < deadline:
        time.sleep(0.02)
    server.kill()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert len(acked) >= 3000, "the clients should have been acknowledged before the kill"

    restarted = server_factory(config_file, database_url).start()
    stored = {e.message_id for e in EventLog(Database(database_url)).read(0, 10_000_000)}
    lost = set(acked) - stored
    assert lost == set(), f"{len(lost)} acknowledged events were lost"
    # And the restarted server still dedups what was stored before the crash.
    response = httpx.post(restarted.base_url + "/v1/track", auth=("web-key", ""),
                          json={"userId": "u0", "event": "Tick", "messageId": acked[0]})
    assert response.status_code == 200
    assert EventLog(Database(database_url)).count() == len(stored)
    restarted.stop()


def test_no_acknowledged_event_lost_on_sigkill_sqlite(server_factory: type[ServerProcess], config_file: Path,
                                                      sqlite_url: str) -> None:
    _kill_mid_stream_and_check(server_factory, config_file, sqlite_url)


def test_no_acknowledged_event_lost_on_sigkill_postgresql(server_factory: type[ServerProcess],
                                                          config_file: Path, pg_url: str) -> None:
    _kill_mid_stream_and_check(server_factory, config_file, pg_url)
