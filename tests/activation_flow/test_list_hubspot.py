"""HubSpot Lists against a local fake of the CRM v3 lists and contacts API, through activation and delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow
from tests.destinations.fakes.hubspot_lists import TOKEN, HubSpotListsFake, hubspot_lists_fake
from tests.destinations.fakes.server import Answer
from traitsync.activation.routes import debug_entry
from traitsync.delivery.overview import recent_messages


@pytest.fixture
def hubspot() -> Iterator[HubSpotListsFake]:
    fake = hubspot_lists_fake()
    yield fake
    fake.stop()


def destination(fake: HubSpotListsFake) -> str:
    return f"""\
  - id: dst_hs
    kind: hubspot_lists
    settings: {{access_token: "{TOKEN}", endpoint: "{fake.url}"}}
    connections:
      - computation: {AUDIENCE}
"""


def member(flow: Flow, n: int, email: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    flow.result(f"p{n}", AUDIENCE, True)


def shown(flow: Flow) -> str:
    """Everything the API and the attempt log show about this destination."""
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_hs")])
    conn.close()
    return debugger + json.dumps(flow.rows("SELECT code, detail, requests FROM delivery_attempts"))


def test_first_sync_creates_the_list_then_adds_and_removes_by_record_id(flow_factory: Any,
                                                                        hubspot: HubSpotListsFake) -> None:
    flow = flow_factory(destination(hubspot))
    member(flow, 1, " Ada@Example.com ")
    member(flow, 2, "bob@example.com")
    member(flow, 3)  # no email: HubSpot cannot take it
    flow.sync_lists("dst_hs")
    assert [r.path for r in hubspot.fake.requests] == ["/crm/v3/lists/object-type-id/0-1/name/First%20Time%20Shopper",
                                                       "/crm/v3/lists"]
    assert hubspot.fake.requests[1].json() == {"name": "First Time Shopper", "objectTypeId": "0-1",
                                               "processingType": "MANUAL"}
    flow.sync_lists("dst_hs")
    [upsert] = hubspot.fake.on("POST", "/crm/v3/objects/contacts/batch/upsert")
    assert upsert.json() == {"inputs": [
        {"idProperty": "email", "id": "ada@example.com", "properties": {"email": "ada@example.com"}},
        {"idProperty": "email", "id": "bob@example.com", "properties": {"email": "bob@example.com"}}]}
    [put] = hubspot.fake.on("PUT", "/crm/v3/lists/101/memberships/add-and-remove")
    assert put.json() == {"recordIdsToAdd": ["5001", "5002"]}
    # Later: exactly the leaver is removed (looked up by email) and the newcomer added.
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, "grace@example.com")
    flow.sync_lists("dst_hs")
    assert [r.json() for r in hubspot.fake.on("POST", "/crm/v3/objects/contacts/batch/read")] == [
        {"idProperty": "email", "properties": ["email"], "inputs": [{"id": "bob@example.com"}]}]
    puts = [r.json() for r in hubspot.fake.on("PUT", "/crm/v3/lists/101/memberships")]
    assert puts[1:] == [{"recordIdsToRemove": ["5002"]}, {"recordIdsToAdd": ["5003"]}]
    assert hubspot.emails_in("101") == {"ada@example.com", "grace@example.com"}
    flow.sync_lists("dst_hs")  # nothing changed: nothing sent
    assert len(hubspot.fake.requests) == 8
    assert hubspot.fake.violations == []
    text = shown(flow)
    for plain in ("ada@", "Ada@", "bob@", "grace@", TOKEN):
        assert plain not in text


def test_a_refused_email_does_not_block_the_others_and_is_sent_again(flow_factory: Any,
                                                                      hubspot: HubSpotListsFake) -> None:
    flow = flow_factory(destination(hubspot))
    member(flow, 1, "ada@example.com")
    member(flow, 2, "odd@example.com")
    hubspot.invalid.add("odd@example.com")
    flow.sync_lists("dst_hs")
    flow.sync_lists("dst_hs")
    assert hubspot.emails_in("101") == {"ada@example.com"}
    [(state, result)] = flow.rows("SELECT state, result FROM delivery_outbox WHERE id = 2")
    assert (state, json.loads(result)) == ("delivered", {"rejected": [1], "rejected_codes": ["HUBSPOT_REFUSED"]})
    assert flow.rows("SELECT id_value FROM activation_list_members WHERE id_type = 'email'") == [("ada@example.com",)]
    hubspot.invalid.clear()
    flow.sync_lists("dst_hs")
    assert hubspot.fake.on("POST", "/crm/v3/objects/contacts/batch/upsert")[-1].json()["inputs"][0]["id"] == (
        "odd@example.com")
    assert hubspot.emails_in("101") == {"ada@example.com", "odd@example.com"}
    assert "odd@" not in shown(flow)  # HubSpot's error quoted it; we never keep its words


def test_throttles_lose_nothing_and_a_deleted_list_is_created_again(flow_factory: Any,
                                                                    hubspot: HubSpotListsFake) -> None:
    flow = flow_factory(destination(hubspot))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_hs")
    hubspot.fake.script.append(Answer(429, {"status": "error", "message": "You have reached your ten_secondly_rolling"
                                            " limit.", "errorType": "RATE_LIMIT", "policyName": "TEN_SECONDLY_ROLLING"},
                                      {"Retry-After": "0"}))
    flow.sync_lists("dst_hs")
    assert hubspot.emails_in("101") == {"ada@example.com"}
    assert flow.rows("SELECT code FROM delivery_attempts ORDER BY id")[1:] == [("RATE_LIMIT",), (None,)]
    del hubspot.lists["101"]  # deleted in HubSpot
    member(flow, 2, "grace@example.com")
    flow.sync_lists("dst_hs")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_hs")  # recreate
    flow.sync_lists("dst_hs")  # and upload every member
    assert hubspot.emails_in("102") == {"ada@example.com", "grace@example.com"}


def test_a_list_that_already_exists_is_found_by_name(flow_factory: Any, hubspot: HubSpotListsFake) -> None:
    hubspot.lists["77"] = {"name": "First Time Shopper", "members": set()}
    flow = flow_factory(destination(hubspot))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_hs")
    flow.sync_lists("dst_hs")
    assert hubspot.fake.on("POST", "/crm/v3/lists") == []  # found, not created
    assert hubspot.emails_in("77") == {"ada@example.com"}
