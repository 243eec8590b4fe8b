"""A real ``traitsync serve`` fed by the demo's events, a receiver that fails one user on
purpose (so there are dead letters to replay), and Debian's Chromium driven by Playwright.

One server for the whole package: starting it and computing the demo's shop history is most
of the cost, and the tests only read from it, except the replay, which is its own test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import free_port
from traitsync.demo.runner import TOKEN, WRITE_KEY, demo_config
from traitsync.demo.sample import live_views, shop_events

CHROMIUM = Path(os.environ.get("TRAITSYNC_CHROMIUM", "/usr/bin/chromium"))
#: The receiver answers 400 to this user's messages while ``failing``: they become dead letters.
FAILING_USER = "user_003"
BAD_EVENTS = [
    {"type": "track", "userId": "user_001", "messageId": "console-no-event"},  # no event name
    {"type": "track", "userId": "undefined", "anonymousId": "anon-blocked", "event": "Product Viewed",
     "messageId": "console-blocked-id"},
]


@dataclass
class Receiver:
    """The demo's two webhook destinations, recording every message it accepts."""

    failing: bool = True
    accepted: list[dict[str, Any]] = field(default_factory=list)
    refused: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""

    def start(self) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"null")
                bad = receiver.failing and isinstance(body, dict) and body.get("userId") == FAILING_USER
                (receiver.refused if bad else receiver.accepted).append(body)
                self.send_response(400 if bad else 200)
                self.send_header("content-type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"error":"user_003 is refused by the test receiver"}' if bad else b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server


@dataclass
class Console:
    base: str
    receiver: Receiver

    def api(self, path: str, **params: Any) -> Any:
        res = httpx.get(f"{self.base}/api/v1{path}", params=params, headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10)
        res.raise_for_status()
        return res.json()


def _wait(what: str, check: Any, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="package")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    receiver = Receiver()
    http = receiver.start()
    home = tmp_path_factory.mktemp("console")
    (home / "traitsync.yaml").write_text(demo_config(receiver.url))
    port = free_port()
    env = {**os.environ}
    env.pop("TRAITSYNC_DATABASE_URL", None)
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen([sys.executable, "-m", "traitsync.cli", "serve", "--single-process", "--port", str(port),
                             "--log-level", "warning"], cwd=home, stdout=log, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait("the server", lambda: proc.poll() is None and httpx.get(f"{base}/healthz").status_code == 200, 60)
        now = int(time.time() * 1000)
        events = shop_events(now) + live_views(now)
        with httpx.Client(base_url=base, auth=(WRITE_KEY, ""), timeout=10) as client:
            for i in range(0, len(events), 100):
                client.post("/v1/batch", json={"batch": events[i:i + 100]}).raise_for_status()
            # Something for the Sources and Identity pages to show: a rejected message and a
            # blocked identifier value.
            client.post("/v1/batch", json={"batch": BAD_EVENTS})
        fixture = Console(base, receiver)
        _wait("every computation to be live", lambda: all(
            c["status"] == "Live" for c in fixture.api("/computations")["computations"]))
        _wait("dead letters for the refused user",
              lambda: fixture.api("/destinations/dst_events/dead-letters")["total"] > 0)
        yield fixture
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        http.shutdown()


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the console's browser tests drive Debian's Chromium; run `make browser` "
                    "(apt-get install chromium) or set TRAITSYNC_CHROMIUM", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            chromium.close()
