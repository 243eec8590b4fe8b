"""When the log cannot commit the API answers 503 with Retry-After, and recovers by itself.

SQLite: the server process is forbidden to grow any file (RLIMIT_FSIZE, set from outside with
prlimit, as a full disk would). PostgreSQL: the server reaches the database through a TCP
proxy that the test cuts and restores, as a database outage would look from the server.
"""

from __future__ import annotations

import resource
import socket
import threading
import time
from pathlib import Path

import httpx

from tests.conftest import PG_URL, ServerProcess, free_port
from traitsync.log import EventLog
from traitsync.store import Database


def _post(base_url: str, message_id: str) -> httpx.Response:
    return httpx.post(base_url + "/v1/track", auth=("web-key", ""), timeout=15,
                      json={"userId": "u", "event": "X", "messageId": message_id})


def _wait_for_status(base_url: str, prefix: str, status: int, timeout: float = 20) -> httpx.Response:
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        response = _post(base_url, f"{prefix}-{n}")
        if response.status_code == status or time.monotonic() > deadline:
            return response
        n += 1
        time.sleep(0.2)


def test_sqlite_file_that_cannot_grow(server_factory: type[ServerProcess], config_file: Path,
                                      sqlite_url: str) -> None:
    server = server_factory(config_file, sqlite_url).start()
    assert server.proc is not None
    assert _post(server.base_url, "before").status_code == 200
    pid = server.proc.pid
    soft, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (4096, hard))
    try:
        blob = {"userId": "u", "event": "X", "properties": {"pad": "z" * 20_000}}
        refused = []
        for i in range(5):
            response = httpx.post(server.base_url + "/v1/track", auth=("web-key", ""), timeout=15,
                                  json={**blob, "messageId": f"during-{i}"})
            refused.append(response)
        assert {r.status_code for r in refused} == {503}
        assert refused[0].headers["Retry-After"] == "5"
        assert refused[0].json()["code"] == "storage_unavailable"
        assert httpx.get(server.base_url + "/healthz").status_code == 503
    finally:
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (soft, hard))
    recovered = _wait_for_status(server.base_url, "after", 200)
    assert recovered.status_code == 200
    assert httpx.get(server.base_url + "/healthz").status_code == 200
    ids = {e.message_id for e in EventLog(Database(sqlite_url)).read(0, 1000)}
    assert "before" in ids
    assert not any(i.startswith("during-") for i in ids)


class TcpProxy:
    """Forwards a local port to PostgreSQL; ``cut`` drops every connection and refuses new ones."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._lock = threading.Lock()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        if self._listener is not None:
            try:
                self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
            except OSError:
                pass
            self._listener.close()
            self._listener = None
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                    conn.close()
                except OSError:
                    pass
            self._conns.clear()


def test_postgresql_outage(server_factory: type[ServerProcess], config_file: Path, pg_url: str) -> None:
    proxy = TcpProxy(("127.0.0.1", 5432))
    proxy.start()
    host_port = PG_URL.split("@", 1)[1].split("/", 1)[0]
    proxied_url = pg_url.replace(host_port, f"127.0.0.1:{proxy.port}", 1)
    server = server_factory(config_file, proxied_url).start()
    assert _post(server.base_url, "before").status_code == 200
    proxy.cut()
    refused = _wait_for_status(server.base_url, "during", 503)
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"
    assert _post(server.base_url, "during-again").status_code == 503
    proxy.start()
    recovered = _wait_for_status(server.base_url, "after", 200)
    assert recovered.status_code == 200
    ids = {e.message_id for e in EventLog(Database(pg_url)).read(0, 1000)}
    assert "before" in ids
    assert any(i.startswith("after-") for i in ids)
    assert not any(i.startswith("during") for i in ids)
    proxy.cut()
