"""Pinterest Audiences against a local fake of the Pinterest API v5, through activation and delivery."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow, config_text
from tests.destinations.fakes.pinterest import AD_ACCOUNT, PinterestFake, pinterest_fake, settings_yaml
from tests.destinations.fakes.server import Answer
from traitsync.activation.config import validate_destinations_section
from traitsync.activation.routes import debug_entry
from traitsync.config import load_config_text
from traitsync.definitions import load_definitions
from traitsync.delivery.overview import recent_messages
from traitsync.destinations.vendors.pinterest_audiences import PLACEHOLDER

LISTS = f"/v5/ad_accounts/{AD_ACCOUNT}/customer_lists"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def pin() -> Iterator[PinterestFake]:
    fake = pinterest_fake()
    yield fake
    fake.stop()


def destination(fake: PinterestFake, schedule: str = "") -> str:
    return f"""\
  - id: dst_pin
    kind: pinterest_audiences
    settings: {settings_yaml(fake)}
{schedule}    connections:
      - computation: {AUDIENCE}
        id_sync: {{email: all, android.idfa: all}}
"""


def member(flow: Flow, n: int, **ids: str) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    for kind, value in ids.items():
        flow.identifier(f"p{n}", kind.replace("_", "."), value)
    flow.result(f"p{n}", AUDIENCE, True)


def patches(pin: PinterestFake) -> list[tuple[str, str, list[str]]]:
    return [(r.path, r.json()["operation_type"], sorted(r.json()["records"].split(",")))
            for r in pin.fake.on("PATCH", LISTS)]


def test_first_sync_creates_the_list_then_adds_and_removes_hashed_records(flow_factory: Any,
                                                                          pin: PinterestFake) -> None:
    flow = flow_factory(destination(pin))
    member(flow, 1, email=" Ada@Example.com ")
    member(flow, 2, email="bob@example.com", android_idfa="CDDA802E-FB9C-47AD-9866-0794D394C912")
    member(flow, 3)  # only a user_id
    flow.sync_lists("dst_pin")
    created = pin.fake.on("POST", LISTS)
    assert [(r.json()["name"], r.json()["records"], r.json()["list_type"]) for r in created] == [
        ("First Time Shopper", PLACEHOLDER, "EMAIL")]
    assert patches(pin) == []
    flow.sync_lists("dst_pin")
    assert patches(pin) == [(f"{LISTS}/643001", "ADD", sorted([
        sha("ada@example.com"), sha("bob@example.com"), sha("cdda802e-fb9c-47ad-9866-0794d394c912")]))]
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, email="grace@example.com")
    flow.sync_lists("dst_pin")
    assert patches(pin)[1:] == [
        (f"{LISTS}/643001", "REMOVE", sorted([sha("bob@example.com"), sha("cdda802e-fb9c-47ad-9866-0794d394c912")])),
        (f"{LISTS}/643001", "ADD", [sha("grace@example.com")])]
    assert pin.lists["643001"] == {PLACEHOLDER, sha("ada@example.com"), sha("grace@example.com")}
    assert pin.fake.violations == [] and pin.duplicates == 0 and pin.tokens_issued == 1
    every_body = " ".join(r.body.decode() for r in pin.fake.requests if "oauth" not in r.path)
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_pin")])
    conn.close()
    for plain in ("ada@", "Ada@", "bob@", "grace@", "CDDA802E", "cdda802e"):
        assert plain not in every_body and plain not in debugger


def test_throttles_lose_nothing_and_a_deleted_list_is_created_again(flow_factory: Any, pin: PinterestFake) -> None:
    flow = flow_factory(destination(pin))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_pin")
    pin.fake.script.append(Answer(429, {"code": 8, "message": "Rate limit exceeded"}, {"Retry-After": "0"}))
    flow.sync_lists("dst_pin")
    assert pin.lists["643001"] == {PLACEHOLDER, sha("ada@example.com")}
    del pin.lists["643001"]
    member(flow, 2, email="grace@example.com")
    flow.sync_lists("dst_pin")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_pin")
    flow.sync_lists("dst_pin")
    assert pin.lists["643002"] == {PLACEHOLDER, sha("ada@example.com"), sha("grace@example.com")}


def test_the_schedule_floor_is_one_hour(tmp_path: Path, pin: PinterestFake) -> None:
    text = config_text(destination(pin, schedule="    schedule: {every: 15m}\n"))
    (tmp_path / "traitsync.yaml").write_text(text)
    loaded = load_config_text(text, file=str(tmp_path / "traitsync.yaml"))
    lines = validate_destinations_section(loaded, load_definitions(loaded.document))
    assert "every 1h (schedule 15m raised to the Pinterest Audiences floor)" in lines[1]
