"""``traitsync serve`` SIGKILLed during delivery, then restarted: every change arrives, same messageIds.

Result rows are written into the store between runs (the engine's contract), so the test
exercises activation + delivery inside the real server process over real sockets. It also
reads the management API (destinations, delivery overview, debugger) once everything arrived.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.activation_flow.conftest import AUDIENCE, AUDIENCE_ID, BASE_CONFIG, Receiver
from traitsync.activation.ids import message_id
from traitsync.activation.types import Identifier
from traitsync.store import Database, migrate

PROFILES = 150


def _config(receiver: Receiver) -> str:
    return BASE_CONFIG + f"""\
management_api:
  token: admin-token
destinations:
  - id: dst_hook
    name: Braze
    kind: webhook
    rate_limit: 200
    settings: {{url: "{receiver.url}/hook"}}
    connections:
      - computation: {AUDIENCE}
        send: [identify]
"""


def _write_results(db: Database) -> set[str]:
    """Enter for every profile, exit for every third: the messageIds activation must produce."""
    expected: set[str] = set()
    conn = db.connect()
    try:
        with conn.transaction():
            for n in range(PROFILES):
                pid, uid = f"p{n:04d}", f"u{n:04d}"
                conn.execute(
                    "INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id,"
                    " created_at_ms, first_message_id, event_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    ("user_id", uid, "users", pid, "src_web", 1, f"m{n}", n))
                changes = [(None, True)] + ([(True, False)] if n % 3 == 0 else [])
                for version, (old, new) in enumerate(changes, start=1):
                    conn.execute(
                        "INSERT INTO computation_results (computation_key, computation_id, computation_class,"
                        " profile_id, old_value, new_value, version, as_of_ms, cause, at_ms)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (AUDIENCE, AUDIENCE_ID, "audience", pid, json.dumps(old), json.dumps(new), version,
                         1_700_000_000_000 + version, f"msg-{n}-{version}", 1_700_000_000_000))
                    expected.add(message_id(AUDIENCE_ID, pid, Identifier("user_id", uid), version, "identify", new))
                conn.execute("INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms)"
                             " VALUES (?, ?, ?, ?, ?)", (pid, AUDIENCE, json.dumps(len(changes) == 1),
                                                         len(changes), 1))
    finally:
        conn.close()
    return expected


def _received_ids(receiver: Receiver) -> list[str]:
    return [m["messageId"] for m in receiver.messages()]


@pytest.mark.slow
def test_sigkill_during_delivery_loses_nothing(db_url: str, tmp_path: Path, receiver: Receiver,
                                               server_factory: Any) -> None:
    def slow(_: Any) -> None:
        time.sleep(0.01)  # keep delivery busy long enough to be killed in the middle of it
        return None

    receiver.rules.append(slow)
    path = tmp_path / "traitsync.yaml"
    path.write_text(_config(receiver))
    # First run: the connection is registered (and its first sync finds nothing).
    server = server_factory(path, db_url).start()
    headers = {"Authorization": "Bearer admin-token"}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        conn_rows = httpx.get(f"{server.base_url}/api/v1/destinations", headers=headers, timeout=5).json()
        db = Database(db_url)
        c = db.connect()
        done = c.scalar("SELECT COUNT(*) FROM activation_connections WHERE first_sync_done = ?", (True,))
        c.close()
        if done:
            break
        time.sleep(0.1)
    assert conn_rows["destinations"][0]["id"] == "dst_hook"
    server.stop()

    db = Database(db_url)
    migrate(db)
    expected = _write_results(db)
    assert len(expected) == PROFILES + PROFILES // 3

    server = server_factory(path, db_url).start()
    deadline = time.monotonic() + 30
    while len(receiver.messages()) < 40 and time.monotonic() < deadline:
        time.sleep(0.01)
    server.kill()
    got_before = set(_received_ids(receiver))
    assert 0 < len(got_before) < len(expected), "the kill must land in the middle of delivery"

    server = server_factory(path, db_url).start()
    deadline = time.monotonic() + 60
    while not expected <= set(_received_ids(receiver)) and time.monotonic() < deadline:
        time.sleep(0.1)
    ids = _received_ids(receiver)
    c = db.connect()
    states = c.fetchall("SELECT state, COUNT(*) FROM delivery_outbox GROUP BY state")
    cps = c.fetchall("SELECT consumer, \"offset\" FROM checkpoints")
    c.close()
    # Every change at least once, and only those messageIds.
    assert set(ids) == expected, (len(set(ids)), len(expected), states, cps, server.log_path.read_text()[-3000:])
    # Per profile the enter arrives before the exit, even across the crash.
    order: dict[str, list[bool]] = {}
    for m in receiver.messages():
        order.setdefault(m["userId"], []).append(m["traits"][AUDIENCE])
    assert all(v[-1] is (int(u[1:]) % 3 != 0) for u, v in order.items())
    assert all(v.index(True) < v.index(False) for u, v in order.items() if False in v)

    time.sleep(0.5)
    dests = httpx.get(f"{server.base_url}/api/v1/destinations", headers=headers, timeout=5).json()["destinations"]
    assert dests[0]["kind"] == "webhook" and dests[0]["mode"] == "event" and dests[0]["rate_per_second"] == 200
    assert dests[0]["states"]["delivered"] == len(expected)
    view = httpx.get(f"{server.base_url}/api/v1/destinations/dst_hook/delivery-overview", headers=headers,
                     params={"since": "0"}, timeout=5).json()
    assert view["successful_delivery"] == len(expected)
    assert view["pending"] == view["pending_retry"] == 0 and view["failed_delivery"] == {}
    debug = httpx.get(f"{server.base_url}/api/v1/destinations/dst_hook/debugger", headers=headers,
                      params={"limit": 5}, timeout=5).json()
    assert len(debug["messages"]) == 5
    assert all(m["state"] == "delivered" and m["attempts"][-1]["http_status"] == 200 for m in debug["messages"])
    assert httpx.get(f"{server.base_url}/api/v1/destinations", timeout=5).status_code == 401
    server.stop()
