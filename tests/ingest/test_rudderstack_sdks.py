"""RudderStack's libraries, unchanged and with their defaults, pointed at traitsync.

Users moving from RudderStack bring these SDKs; each sends identify, track, page, screen, group
and alias, and every message must be stored with the fields a profile needs.
"""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from rudderstack.analytics.client import Client

from tests.conftest import BASIC_CONFIG
from tests.ingest.conftest import LiveApp, start_live_app

KINDS = ["alias", "group", "identify", "page", "screen", "track"]


def _profile_traits(live: LiveApp, user_id: str) -> dict[str, Any]:
    """The Profile API's traits of a user, once the identity worker has resolved the identify."""
    url = f"{live.base_url}/v1/spaces/spa_test/collections/users/profiles/user_id:{user_id}/traits"
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(url, auth=("profile-secret", ""), timeout=10)
        if response.status_code == 200 and response.json().get("traits"):
            traits: dict[str, Any] = response.json()["traits"]
            return traits
        assert time.monotonic() < deadline, f"no traits for {user_id}: {response.status_code} {response.text}"
        time.sleep(0.1)


def test_rudder_sdk_python_defaults_store_every_call_and_identify_traits(live: LiveApp) -> None:
    errors: list[Exception] = []
    # The library's defaults (gzip on, 4 MB batches), synchronous so that the test can wait for it.
    client = Client("web-key", host=live.base_url, sync_mode=True, max_retries=0,
                    on_error=lambda error, _items: errors.append(error))
    client.identify("u1", {"email": "jane@example.com", "plan": "pro"}, message_id="r-identify")
    client.track("u1", "Order Completed", {"revenue": 42.5}, message_id="r-track")
    client.page("u1", "Docs", "Install", {"path": "/install"}, message_id="r-page")
    client.screen("u1", "Settings", "Profile", message_id="r-screen")
    client.group("u1", "acme", {"name": "ACME"}, message_id="r-group")
    client.alias("anon-1", "u1", message_id="r-alias")
    client.flush()
    assert errors == []
    events = {e.message_id: e for e in live.runtime.event_log.read(0, 100)}
    assert sorted(e.type for e in events.values()) == KINDS
    identify = events["r-identify"]
    assert "traits" not in identify.body["context"] or identify.body["context"]["traits"] == identify.body["traits"]
    assert identify.traits == {"email": "jane@example.com", "plan": "pro"}
    assert events["r-track"].body["properties"] == {"revenue": 42.5}
    assert events["r-page"].properties["page_name"] == "Install"
    assert events["r-screen"].event == "Screen Viewed"
    assert events["r-group"].body["groupId"] == "acme"
    assert events["r-alias"].body["previousId"] == "anon-1"
    assert _profile_traits(live, "u1") == {"email": "jane@example.com", "plan": "pro"}


def _node_sdk_dir(tmp: Path) -> Path:
    """``@rudderstack/rudder-sdk-node`` 3.x from the npm registry, installed into a temporary folder."""
    result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "@rudderstack/rudder-sdk-node@3"],
                            cwd=tmp, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"npm install failed: {result.stderr[-2000:]}"
    return tmp


@pytest.fixture(scope="module")
def node_sdk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("Node.js and npm are not installed: the request this SDK sends is replayed with httpx in "
                    "test_rudder_sdk_node_request_replayed (which always runs)")
    directory = tmp_path_factory.mktemp("rudder-node")
    (directory / "package.json").write_text('{"name": "t", "version": "1.0.0", "private": true}')
    yield _node_sdk_dir(directory)


_NODE_SCRIPT = """
const Analytics = require('@rudderstack/rudder-sdk-node');
const client = new Analytics('web-key', {dataPlaneUrl: process.argv[2], flushAt: 20, retryCount: 0,
                                         logLevel: 'error', errorHandler: (err) => { console.error(err.message);
                                                                                 process.exitCode = 3; }});
const u = 'node-user';
client.identify({userId: u, traits: {email: 'node@example.com', plan: 'team'}, messageId: 'n-identify'});
client.track({userId: u, event: 'Order Completed', properties: {revenue: 7}, messageId: 'n-track'});
client.page({userId: u, name: 'Home', properties: {path: '/'}, messageId: 'n-page'});
client.screen({userId: u, name: 'Settings', messageId: 'n-screen'});
client.group({userId: u, groupId: 'acme', traits: {name: 'ACME'}, messageId: 'n-group'});
client.alias({userId: u, previousId: 'anon-n', messageId: 'n-alias'});
client.flush().then(() => console.log('flushed')).catch((err) => { console.error(err.message);
                                                                   process.exitCode = 2; });
"""


def test_rudder_sdk_node_defaults_store_every_call(live: LiveApp, node_sdk: Path) -> None:
    script = node_sdk / "send.js"
    script.write_text(_NODE_SCRIPT)
    result = subprocess.run(["node", str(script), live.base_url], cwd=node_sdk, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    deadline = time.monotonic() + 10
    while live.runtime.event_log.count() < 6:
        assert time.monotonic() < deadline, f"stored {live.runtime.event_log.count()} of 6; {result.stderr}"
        time.sleep(0.05)
    events = {e.message_id: e for e in live.runtime.event_log.read(0, 100)}
    assert sorted(e.type for e in events.values()) == KINDS
    assert events["n-identify"].traits == {"email": "node@example.com", "plan": "team"}
    assert events["n-track"].body["properties"] == {"revenue": 7}
    assert events["n-track"].body["context"]["library"]["name"] == "analytics-node"
    assert _profile_traits(live, "node-user") == {"email": "node@example.com", "plan": "team"}


def test_rudder_sdk_node_request_replayed(live: LiveApp) -> None:
    """The Node library's request byte for byte in shape: gzipped JSON declared as a form."""
    body = {"batch": [{"type": "track", "userId": "u", "event": "Form Declared", "messageId": "f-1",
                       "originalTimestamp": "2025-03-01T12:00:00.000Z", "sentAt": "2025-03-01T12:00:01.000Z",
                       "channel": "server", "_metadata": {"nodeVersion": "20.0.0"},
                       "context": {"library": {"name": "analytics-node", "version": "3.0.13"}}}],
            "timestamp": "2025-03-01T12:00:01.000Z", "sentAt": "2025-03-01T12:00:01.000Z"}
    response = httpx.post(live.base_url + "/v1/batch", content=gzip.compress(json.dumps(body).encode()),
                          auth=("web-key", ""), timeout=10,
                          headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Encoding": "gzip",
                                   "User-Agent": "analytics-node/3.0.13"})
    assert response.status_code == 200
    assert response.json() == {"success": True, "accepted": 1, "duplicates": 0}
    [event] = live.runtime.event_log.read(0, 10)
    assert event.event == "Form Declared"


RUDDER_LIMITS = BASIC_CONFIG.replace("    write_key: ios-key\n",
                                     "    write_key: ios-key\n    limits: {message: 4MB, batch: 4MB}\n")


@pytest.fixture
def live_limits(db_url: str) -> Iterator[LiveApp]:
    app = start_live_app(db_url, RUDDER_LIMITS)
    yield app
    app.close()


def test_a_source_with_rudderstack_limits_takes_what_the_default_refuses(live_limits: LiveApp) -> None:
    items = [{"type": "track", "userId": "u", "event": "Big", "messageId": f"big-{i}",
              "properties": {"blob": "x" * 100_000}} for i in range(8)]  # one item 100 KB, the batch 800 KB
    content = orjson.dumps({"batch": items})

    def send(key: str) -> httpx.Response:
        return httpx.post(live_limits.base_url + "/v1/batch", content=content, auth=(key, ""), timeout=30,
                          headers={"Content-Type": "application/json"})

    refused = send("web-key")
    assert refused.status_code == 400
    assert refused.json() == {"code": "bad_request", "message": "Request body is over the 500 KB limit for a batch"}
    accepted = send("ios-key")
    assert accepted.status_code == 200
    assert accepted.json() == {"success": True, "accepted": 8, "duplicates": 0}
    single = httpx.post(live_limits.base_url + "/v1/track", auth=("ios-key", ""), timeout=30,
                        json={"userId": "u", "event": "Big", "properties": {"blob": "y" * 1_000_000}})
    assert single.json() == {"success": True}
    over = httpx.post(live_limits.base_url + "/v1/track", auth=("ios-key", ""), timeout=30,
                      json={"userId": "u", "event": "Big", "properties": {"blob": "y" * (4 * 1024 * 1024)}})
    assert over.status_code == 400
    assert over.json() == {"code": "bad_request", "message": "Request body is over the 4 MB limit for a single call"}
    assert {e.source_id for e in live_limits.runtime.event_log.read(0, 100)} == {"src_ios"}


def test_rudder_sdk_python_large_batches_need_rudderstack_limits(live_limits: LiveApp) -> None:
    """Its default, batching mode sends up to 4 MB per request: a source with 4MB limits keeps all of it."""
    errors: list[Exception] = []
    client = Client("ios-key", host=live_limits.base_url, max_retries=0,
                    on_error=lambda error, _items: errors.append(error))
    for i in range(10):  # 10 x 100 KB: over Segment's 500 KB for one batch
        client.track("u", "Big", {"blob": "x" * 100_000}, message_id=f"big-{i}")
    client.flush()
    client.join()
    assert errors == []
    events = live_limits.runtime.event_log.read(0, 100)
    assert sorted(e.message_id for e in events) == sorted(f"big-{i}" for i in range(10))
    # The same through a source with Segment's limits: refused (the library drops it), and recorded.
    refused: list[str] = []
    default = Client("web-key", host=live_limits.base_url, max_retries=0,
                     on_error=lambda error, _items: refused.append(str(error)))
    for i in range(10):
        default.track("u", "Big", {"blob": "x" * 100_000}, message_id=f"lost-{i}")
    default.flush()
    default.join()
    assert refused == ["[rudderstack] bad_request: Request body is over the 500 KB limit for a batch (400)"]
    [record] = live_limits.runtime.event_log.recent_rejections("src_web")
    assert record["message"] == "Request body is over the 500 KB limit for a batch"
