"""Google Display & Video 360 against a local fake of the DV360 API v4, through activation and delivery."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow, config_text
from tests.destinations.fakes.display_video_360 import DV360Fake, dv360_fake, settings_yaml
from tests.destinations.fakes.server import Answer
from traitsync.activation.config import validate_destinations_section
from traitsync.activation.routes import debug_entry
from traitsync.config import load_config_text
from traitsync.definitions import load_definitions
from traitsync.delivery.overview import recent_messages

EDIT = "/v4/firstPartyAndPartnerAudiences/7100001:editCustomerMatchMembers"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def dv() -> Iterator[DV360Fake]:
    fake = dv360_fake()
    yield fake
    fake.stop()


def destination(fake: DV360Fake, schedule: str = "") -> str:
    return f"""\
  - id: dst_dv
    kind: display_video_360
    settings: {settings_yaml(fake)}
{schedule}    connections:
      - computation: {AUDIENCE}
        id_sync: {{email: all, phone: all}}
"""


def member(flow: Flow, n: int, *, email: str | None = None, phone: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    if phone:
        flow.identifier(f"p{n}", "phone", phone)
    flow.result(f"p{n}", AUDIENCE, True)


def test_first_sync_creates_the_audience_then_edits_members(flow_factory: Any, dv: DV360Fake) -> None:
    flow = flow_factory(destination(dv))
    member(flow, 1, email=" Ada.Lovelace@Example.com ")
    member(flow, 2, phone="(650) 555-1234")
    member(flow, 3)
    flow.sync_lists("dst_dv")
    [created] = dv.fake.on("POST", "/v4/firstPartyAndPartnerAudiences")
    assert created.json()["displayName"] == "First Time Shopper" and created.query["advertiserId"] == ["4304640"]
    flow.sync_lists("dst_dv")
    [added] = dv.fake.on("POST", EDIT)
    contact = added.json()["addedContactInfoList"]
    assert sorted(contact["contactInfos"], key=json.dumps) == sorted(
        [{"hashedEmails": [sha("ada.lovelace@example.com")]}, {"hashedPhoneNumbers": [sha("+16505551234")]}],
        key=json.dumps)
    assert contact["consent"] == {"adUserData": "CONSENT_STATUS_GRANTED", "adPersonalization": "CONSENT_STATUS_DENIED"}
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, email="grace@example.com")
    flow.sync_lists("dst_dv")
    edits = [r.json() for r in dv.fake.on("POST", EDIT)][1:]
    assert edits == [
        {"advertiserId": "4304640", "removedContactInfoList": {"contactInfos": [
            {"hashedPhoneNumbers": [sha("+16505551234")]}], "consent": contact["consent"]}},
        {"advertiserId": "4304640", "addedContactInfoList": {"contactInfos": [
            {"hashedEmails": [sha("grace@example.com")]}], "consent": contact["consent"]}}]
    assert dv.audiences["7100001"] == {sha("ada.lovelace@example.com"), sha("grace@example.com")}
    assert dv.fake.violations == [] and dv.tokens_issued == 1
    every_body = " ".join(r.body.decode() for r in dv.fake.requests if r.path != "/token")
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_dv")])
    conn.close()
    for plain in ("lovelace", "Lovelace", "6505551234", "grace@"):
        assert plain not in every_body and plain not in debugger


def test_throttles_lose_nothing_and_a_deleted_audience_is_created_again(flow_factory: Any, dv: DV360Fake) -> None:
    flow = flow_factory(destination(dv))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_dv")
    dv.fake.script.append(Answer(429, {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota"}},
                                 {"Retry-After": "0"}))
    flow.sync_lists("dst_dv")
    assert dv.audiences["7100001"] == {sha("ada@example.com")}
    del dv.audiences["7100001"]
    member(flow, 2, email="grace@example.com")
    flow.sync_lists("dst_dv")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_dv")
    flow.sync_lists("dst_dv")
    assert dv.audiences["7100002"] == {sha("ada@example.com"), sha("grace@example.com")}


def test_the_schedule_floor_is_six_hours(tmp_path: Path, dv: DV360Fake) -> None:
    text = config_text(destination(dv, schedule="    schedule: {every: 1h}\n"))
    (tmp_path / "traitsync.yaml").write_text(text)
    loaded = load_config_text(text, file=str(tmp_path / "traitsync.yaml"))
    lines = validate_destinations_section(loaded, load_definitions(loaded.document))
    assert "every 6h (schedule 1h raised to the Google Display & Video 360 floor)" in lines[1]
