"""Facebook Custom Audiences against a local fake of the Graph API, through activation and delivery."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow, config_text
from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen
from traitsync.activation.routes import debug_entry
from traitsync.config import load_config_text
from traitsync.delivery.overview import recent_messages
from traitsync.errors import ConfigError
from traitsync.server.project import resolve_project

TOKEN = "EAAB-system-user-token-123"
ROW = {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "string"}}
USERS_SCHEMA = {"type": "object", "required": ["payload"], "additionalProperties": False, "properties": {
    "payload": {"type": "object", "required": ["schema", "data"], "additionalProperties": False, "properties": {
        "schema": {"const": ["EMAIL", "PHONE", "MADID", "EXTERN_ID"]},
        "data": {"type": "array", "minItems": 1, "maxItems": 10000, "items": ROW}}}}}
CREATE_SCHEMA = {"type": "object", "required": ["name", "subtype", "customer_file_source"], "properties": {
    "name": {"type": "string", "minLength": 1}, "subtype": {"const": "CUSTOM"},
    "customer_file_source": {"enum": ["USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY",
                                      "BOTH_USER_AND_PARTNER_PROVIDED"]}}}


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.fixture
def graph() -> Iterator[FakeVendor]:
    made = {"n": 0}

    def authorised(seen: Seen) -> bool:
        return seen.header("Authorization") == f"Bearer {TOKEN}"

    def create(seen: Seen, _m: re.Match[str]) -> Answer:
        if not authorised(seen):
            return Answer(400, {"error": {"code": 190, "message": "Invalid OAuth access token"}})
        made["n"] += 1
        return Answer(200, {"id": f"2384{made['n']}"})

    def users(seen: Seen, m: re.Match[str]) -> Answer:
        rows = seen.json()["payload"]["data"]
        return Answer(200, {"audience_id": m.group(1), "num_received": len(rows), "num_invalid_entries": 0})

    fake = FakeVendor([
        Route("POST", r"/v24\.0/act_1234/customaudiences", create, schema=CREATE_SCHEMA),
        Route("POST", r"/v24\.0/(\d+)/users", users, schema=USERS_SCHEMA),
        Route("DELETE", r"/v24\.0/(\d+)/users", users, schema=USERS_SCHEMA),
    ]).start()
    yield fake
    fake.stop()


def destination(fake: FakeVendor) -> str:
    return f"""\
  - id: dst_fb
    kind: facebook_custom_audiences
    settings: {{access_token: "{TOKEN}", ad_account_id: "1234", endpoint: "{fake.url}/v24.0"}}
    min_audience_size: 1   # a handful of test members (Meta's own minimum, 100, is tested apart)
    connections:
      - computation: {AUDIENCE}
        id_sync: {{email: all, phone: all}}   # phone is a custom identifier: sent only with ID Sync
"""


def member(flow: Flow, n: int, *, email: str | None = None, phone: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    if phone:
        flow.identifier(f"p{n}", "phone", phone)
    flow.result(f"p{n}", AUDIENCE, True)


def uploads(fake: FakeVendor, method: str) -> list[tuple[str, list[list[str]]]]:
    return [(r.path, sorted(r.json()["payload"]["data"])) for r in fake.on(method, "/v24.0/2")]


def test_first_sync_creates_then_uploads_hashed_members_with_the_audience_id(flow_factory: Any,
                                                                            graph: FakeVendor) -> None:
    flow = flow_factory(destination(graph))
    member(flow, 1, email=" Ada.Lovelace@Example.com ")
    member(flow, 2, phone="(650) 555-1234")
    member(flow, 3)  # only a user_id: Meta cannot match it unless send_user_id is on
    flow.sync_lists("dst_fb")  # creates the audience alone: uploads need its id
    assert [r.json()["name"] for r in graph.on("POST", "/v24.0/act_1234/customaudiences")] == ["First Time Shopper"]
    assert uploads(graph, "POST") == []
    flow.sync_lists("dst_fb")  # the id is confirmed: every member goes up with it
    assert uploads(graph, "POST") == [("/v24.0/23841/users", sorted([
        ["", sha("16505551234"), "", ""], [sha("ada.lovelace@example.com"), "", "", ""]]))]
    # Later syncs send only the difference.
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, email="grace@example.com")
    flow.sync_lists("dst_fb")
    assert uploads(graph, "DELETE") == [("/v24.0/23841/users", [["", sha("16505551234"), "", ""]])]
    assert uploads(graph, "POST")[-1] == ("/v24.0/23841/users", [[sha("grace@example.com"), "", "", ""]])
    assert graph.violations == []
    every_body = " ".join(r.body.decode() for r in graph.requests)
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_fb")])  # what the API shows
    conn.close()
    for plain in ("ada.lovelace", "Ada.Lovelace", "6505551234", "grace@"):
        assert plain not in every_body and plain not in debugger


def test_a_list_deleted_at_facebook_is_created_again(flow_factory: Any, graph: FakeVendor) -> None:
    flow = flow_factory(destination(graph))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_fb")
    flow.sync_lists("dst_fb")
    member(flow, 2, email="grace@example.com")
    graph.script.append(Answer(400, {"error": {"code": 100, "error_subcode": 33,
                                               "message": "Unsupported post request. Object does not exist"}}))
    flow.sync_lists("dst_fb")  # the add finds the audience gone: dead with LIST_NOT_FOUND
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_fb")  # recreate
    flow.sync_lists("dst_fb")  # and upload every member to the new audience
    assert len(graph.on("POST", "/v24.0/act_1234/customaudiences")) == 2
    assert uploads(graph, "POST")[-1] == ("/v24.0/23842/users", sorted([
        [sha("ada@example.com"), "", "", ""], [sha("grace@example.com"), "", "", ""]]))


def test_a_throttle_is_retried_and_loses_nothing(flow_factory: Any, graph: FakeVendor) -> None:
    flow = flow_factory(destination(graph))
    member(flow, 1, email="ada@example.com")
    flow.sync_lists("dst_fb")
    graph.script.append(Answer(400, {"error": {"code": 17, "message": "User request limit reached"}}))
    flow.sync_lists("dst_fb")
    assert [r.path for r in graph.requests].count("/v24.0/23841/users") == 2
    assert flow.rows("SELECT state, attempts FROM delivery_outbox ORDER BY id") == [("delivered", 1),
                                                                                    ("delivered", 2)]


def test_bad_settings_name_the_setting(tmp_path: Path) -> None:
    text = config_text(f"""\
  - id: dst_fb
    kind: facebook_custom_audiences
    settings: {{access_token: t, ad_account_id: "act_12x"}}
    connections:
      - computation: {AUDIENCE}
""")
    with pytest.raises(ConfigError) as info:
        resolve_project(load_config_text(text, file=str(tmp_path / "traitsync.yaml")))
    assert "[destinations[0].settings.ad_account_id]" in str(info.value)
