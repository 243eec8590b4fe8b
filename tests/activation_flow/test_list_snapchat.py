"""Snapchat Audiences against a local fake of the Snap Marketing API, through activation and delivery."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow, config_text
from tests.destinations.fakes.server import Answer
from tests.destinations.fakes.snapchat import CLIENT_SECRET, REFRESH_TOKEN, SnapFake, settings_yaml, snapchat_fake
from traitsync.activation.config import validate_destinations_section
from traitsync.activation.routes import debug_entry
from traitsync.config import load_config_text
from traitsync.definitions import load_definitions
from traitsync.delivery.overview import recent_messages


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def snap() -> Iterator[SnapFake]:
    fake = snapchat_fake()
    yield fake
    fake.stop()


def destination(fake: SnapFake, schedule: str = "") -> str:
    return f"""\
  - id: dst_snap
    kind: snapchat_audiences
    settings: {settings_yaml(fake)}
{schedule}    connections:
      - computation: {AUDIENCE}
        id_sync: {{email: all, phone: all, ios.idfa: all}}
"""


def member(flow: Flow, n: int, **ids: str) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    for kind, value in ids.items():
        flow.identifier(f"p{n}", kind.replace("_", "."), value)
    flow.result(f"p{n}", AUDIENCE, True)


def uploads(snap: SnapFake, method: str) -> list[tuple[str, str, list[str]]]:
    out = []
    for r in snap.fake.on(method, "/v1/segments/"):
        users = r.json()["users"][0]
        out.append((r.path, users["schema"][0], sorted(row[0] for row in users["data"])))
    return out


def test_first_sync_creates_the_segment_then_uploads_one_schema_per_request(flow_factory: Any,
                                                                            snap: SnapFake) -> None:
    flow = flow_factory(destination(snap))
    member(flow, 1, email=" Ada@Example.com ")
    member(flow, 2, phone="(650) 555-1234", ios_idfa="AEBE52E7-03EE-455A-B3C4-E57283966239")
    member(flow, 3, phone="0044 20 7946 0018")
    member(flow, 4)  # only a user_id: Snapchat cannot match it
    flow.sync_lists("dst_snap")
    assert [r.json()["segments"][0]["name"] for r in snap.fake.on("POST", "/v1/adaccounts/")] == ["First Time Shopper"]
    assert uploads(snap, "POST") == []
    flow.sync_lists("dst_snap")
    assert uploads(snap, "POST") == [
        ("/v1/segments/4600001/users", "EMAIL_SHA256", [sha("ada@example.com")]),
        ("/v1/segments/4600001/users", "PHONE_SHA256", sorted([sha("16505551234"), sha("442079460018")])),
        ("/v1/segments/4600001/users", "MOBILE_AD_ID_SHA256", [sha("aebe52e7-03ee-455a-b3c4-e57283966239")])]
    # A later sync sends exactly the difference.
    flow.result("p3", AUDIENCE, False)
    member(flow, 5, email="grace@example.com")
    flow.sync_lists("dst_snap")
    assert uploads(snap, "DELETE") == [("/v1/segments/4600001/users", "PHONE_SHA256", [sha("442079460018")])]
    assert uploads(snap, "POST")[3:] == [("/v1/segments/4600001/users", "EMAIL_SHA256", [sha("grace@example.com")])]
    assert snap.segments["4600001"] == {sha("ada@example.com"), sha("16505551234"), sha("grace@example.com"),
                                        sha("aebe52e7-03ee-455a-b3c4-e57283966239")}
    assert snap.fake.violations == [] and snap.tokens_issued == 1
    every_body = " ".join(r.body.decode() for r in snap.fake.requests if "oauth2" not in r.path)
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_snap")])
    conn.close()
    for plain in ("ada@", "Ada@", "6505551234", "7946", "grace@", "AEBE52E7", "aebe52e7"):
        assert plain not in every_body and plain not in debugger
    assert CLIENT_SECRET not in debugger and REFRESH_TOKEN not in debugger


def test_throttles_and_server_errors_lose_nothing(flow_factory: Any, snap: SnapFake) -> None:
    flow = flow_factory(destination(snap))
    member(flow, 1, email="ada@example.com", phone="+16505551234")
    flow.sync_lists("dst_snap")
    # The email request is throttled, then the phone request fails: the operation is retried whole.
    snap.fake.script.extend([Answer(429, {"request_status": "ERROR", "debug_message": "Too many requests"},
                                    {"Retry-After": "0"}),
                             Answer(200, {"request_status": "SUCCESS"}),
                             Answer(503, {"request_status": "ERROR", "debug_message": "unavailable"})])
    flow.sync_lists("dst_snap")
    assert snap.segments["4600001"] == {sha("ada@example.com"), sha("16505551234")}
    assert flow.rows("SELECT state, attempts FROM delivery_outbox ORDER BY id") == [("delivered", 1),
                                                                                    ("delivered", 3)]


def test_a_segment_deleted_at_snapchat_is_created_again(flow_factory: Any, snap: SnapFake) -> None:
    flow = flow_factory(destination(snap))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_snap")
    flow.sync_lists("dst_snap")
    del snap.segments["4600001"]
    member(flow, 2, email="grace@example.com")
    flow.sync_lists("dst_snap")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_snap")
    flow.sync_lists("dst_snap")
    assert snap.segments["4600002"] == {sha("ada@example.com"), sha("grace@example.com")}


def test_the_schedule_floor_is_one_hour(tmp_path: Path, snap: SnapFake) -> None:
    text = config_text(destination(snap, schedule="    schedule: {every: 10m}\n"))
    (tmp_path / "traitsync.yaml").write_text(text)
    loaded = load_config_text(text, file=str(tmp_path / "traitsync.yaml"))
    lines = validate_destinations_section(loaded, load_definitions(loaded.document))
    assert "every 1h (schedule 10m raised to the Snapchat Audiences floor)" in lines[1]
