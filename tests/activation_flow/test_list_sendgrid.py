"""SendGrid Lists against a local fake of the Marketing Campaigns API, through activation and delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow, config_text
from tests.destinations.fakes.sendgrid_lists import API_KEY, SendGridFake, sendgrid_fake
from tests.destinations.fakes.server import Answer
from traitsync.activation.config import validate_destinations_section
from traitsync.activation.routes import debug_entry
from traitsync.config import load_config_text
from traitsync.definitions import load_definitions
from traitsync.delivery.overview import recent_messages


@pytest.fixture
def sendgrid() -> Iterator[SendGridFake]:
    fake = sendgrid_fake()
    yield fake
    fake.stop()


def destination(fake: SendGridFake, schedule: str = "") -> str:
    return f"""\
  - id: dst_sg
    kind: sendgrid_lists
    settings: {{sendgrid_api_key: "{API_KEY}", endpoint: "{fake.url}"}}
{schedule}    connections:
      - computation: {AUDIENCE}
"""


def member(flow: Flow, n: int, email: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    flow.result(f"p{n}", AUDIENCE, True)


def the_list(sendgrid: SendGridFake) -> str:
    [list_id] = list(sendgrid.lists)[-1:]
    return list_id


def test_first_sync_creates_the_list_then_adds_and_removes_by_email(flow_factory: Any,
                                                                    sendgrid: SendGridFake) -> None:
    flow = flow_factory(destination(sendgrid))
    member(flow, 1, " Ada@Example.com ")
    member(flow, 2, "bob@example.com")
    member(flow, 3)  # no email: SendGrid cannot take it
    flow.sync_lists("dst_sg")
    assert [r.json() for r in sendgrid.fake.on("POST", "/v3/marketing/lists")] == [{"name": "First Time Shopper"}]
    assert sendgrid.fake.on("PUT", "/v3/marketing/contacts") == []
    flow.sync_lists("dst_sg")
    list_id = the_list(sendgrid)
    [put] = sendgrid.fake.on("PUT", "/v3/marketing/contacts")
    assert put.json()["list_ids"] == [list_id]
    assert sorted(c["email"] for c in put.json()["contacts"]) == ["ada@example.com", "bob@example.com"]
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, "grace@example.com")
    flow.sync_lists("dst_sg")
    assert [r.json() for r in sendgrid.fake.on("POST", "/v3/marketing/contacts/search")] == [
        {"emails": ["bob@example.com"]}]
    assert len(sendgrid.fake.on("DELETE", f"/v3/marketing/lists/{list_id}/contacts")) == 1
    assert [c["email"] for c in sendgrid.fake.on("PUT", "/v3/marketing/contacts")[-1].json()["contacts"]] == [
        "grace@example.com"]
    assert sendgrid.emails_in(list_id) == {"ada@example.com", "grace@example.com"}
    assert sendgrid.fake.violations == []
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_sg")])
    conn.close()
    for plain in ("ada@", "Ada@", "bob@", "grace@", API_KEY):
        assert plain not in debugger


def test_a_malformed_email_does_not_block_the_others(flow_factory: Any, sendgrid: SendGridFake) -> None:
    flow = flow_factory(destination(sendgrid))
    member(flow, 1, "ada@example.com")
    member(flow, 2, "weird@example.c0m")  # SendGrid refuses it; it echoes it in its error
    member(flow, 3, "grace@example.com")
    flow.sync_lists("dst_sg")
    flow.sync_lists("dst_sg")
    assert sendgrid.emails_in(the_list(sendgrid)) == {"ada@example.com", "grace@example.com"}
    [(state, result)] = flow.rows("SELECT state, result FROM delivery_outbox WHERE id = 2")
    # Named by position in the operation (emails sort first: ada, grace, weird), never by value.
    assert state == "delivered"
    assert json.loads(result) == {"rejected": [2], "rejected_codes": ["SENDGRID_INVALID_EMAIL"]}
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_sg")])
    details = flow.rows("SELECT detail FROM delivery_attempts")
    conn.close()
    assert "weird@" not in debugger and "weird@" not in json.dumps(details)


def test_throttles_lose_nothing_and_a_deleted_list_is_created_again(flow_factory: Any,
                                                                    sendgrid: SendGridFake) -> None:
    flow = flow_factory(destination(sendgrid))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_sg")
    sendgrid.fake.script.append(Answer(429, {"errors": [{"field": None, "message": "too many requests"}]},
                                       {"X-RateLimit-Reset": "0"}))
    flow.sync_lists("dst_sg")
    first = the_list(sendgrid)
    assert sendgrid.emails_in(first) == {"ada@example.com"}
    del sendgrid.lists[first]
    member(flow, 2, "grace@example.com")
    flow.sync_lists("dst_sg")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_sg")
    flow.sync_lists("dst_sg")
    assert sendgrid.emails_in(the_list(sendgrid)) == {"ada@example.com", "grace@example.com"}


def test_validate_shows_the_hourly_floor(tmp_path: Path, sendgrid: SendGridFake) -> None:
    text = config_text(destination(sendgrid, schedule="    schedule: {every: 5m}\n"))
    (tmp_path / "traitsync.yaml").write_text(text)
    loaded = load_config_text(text, file=str(tmp_path / "traitsync.yaml"))
    lines = validate_destinations_section(loaded, load_definitions(loaded.document))
    assert ("dst_sg (sendgrid_lists, list, 100 req/s, every 1h (schedule 5m raised to the SendGrid Lists floor))"
            in lines[1])
