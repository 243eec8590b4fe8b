"""Mailchimp (lists) against a local fake of the Marketing API, through activation and delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow
from tests.destinations.fakes.mailchimp_lists import API_KEY, MailchimpListsFake, mailchimp_lists_fake, problem
from traitsync.activation.routes import debug_entry
from traitsync.delivery.overview import recent_messages

AUDIENCE_ID = "a1b2c3d4e5"


@pytest.fixture
def mailchimp() -> Iterator[MailchimpListsFake]:
    fake = mailchimp_lists_fake()
    yield fake
    fake.stop()


def destination(fake: MailchimpListsFake, extra: str = "") -> str:
    return f"""\
  - id: dst_mc
    kind: mailchimp_lists
    settings: {{apiKey: "{API_KEY}", listId: "{AUDIENCE_ID}", endpoint: "{fake.url}"{extra}}}
    connections:
      - computation: {AUDIENCE}
"""


def member(flow: Flow, n: int, email: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    flow.result(f"p{n}", AUDIENCE, True)


def shown(flow: Flow) -> str:
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_mc")])
    conn.close()
    return debugger + json.dumps(flow.rows("SELECT code, detail, requests FROM delivery_attempts"))


def test_first_sync_creates_the_segment_then_adds_and_removes(flow_factory: Any,
                                                              mailchimp: MailchimpListsFake) -> None:
    mailchimp.audience["bob@example.com"] = "unsubscribed"  # already in the audience: left as they are
    flow = flow_factory(destination(mailchimp, ', status_if_new: "pending"'))
    member(flow, 1, " Ada@Example.com ")
    member(flow, 2, "bob@example.com")
    member(flow, 3)  # no email
    flow.sync_lists("dst_mc")
    assert [(r.path, r.json()) for r in mailchimp.fake.requests] == [
        (f"/3.0/lists/{AUDIENCE_ID}/segments", {"name": "First Time Shopper", "static_segment": []})]
    flow.sync_lists("dst_mc")
    subscribe, add = mailchimp.fake.requests[1:]
    assert subscribe.json() == {"members": [{"email_address": "ada@example.com", "status": "pending"},
                                            {"email_address": "bob@example.com", "status": "pending"}],
                                "update_existing": False}
    assert (add.path, add.json()) == (f"/3.0/lists/{AUDIENCE_ID}/segments/4001",
                                      {"members_to_add": ["ada@example.com", "bob@example.com"]})
    assert mailchimp.audience == {"ada@example.com": "pending", "bob@example.com": "unsubscribed"}
    assert mailchimp.members("4001") == {"ada@example.com", "bob@example.com"}
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, "grace@example.com")
    flow.sync_lists("dst_mc")
    assert [r.json() for r in mailchimp.fake.requests[3:]] == [
        {"members_to_remove": ["bob@example.com"]},
        {"members": [{"email_address": "grace@example.com", "status": "pending"}], "update_existing": False},
        {"members_to_add": ["grace@example.com"]}]
    assert mailchimp.members("4001") == {"ada@example.com", "grace@example.com"}
    assert "bob@example.com" in mailchimp.audience  # leaving the segment is not leaving the audience
    flow.sync_lists("dst_mc")
    assert len(mailchimp.fake.requests) == 6
    assert mailchimp.fake.violations == []
    text = shown(flow)
    for plain in ("ada@", "Ada@", "bob@", "grace@", API_KEY):
        assert plain not in text


def test_a_refused_member_does_not_block_the_others_and_is_sent_again(flow_factory: Any,
                                                                       mailchimp: MailchimpListsFake) -> None:
    flow = flow_factory(destination(mailchimp))
    member(flow, 1, "ada@example.com")
    member(flow, 2, "odd@example.com")
    mailchimp.invalid.add("odd@example.com")
    flow.sync_lists("dst_mc")
    flow.sync_lists("dst_mc")
    assert mailchimp.members("4001") == {"ada@example.com"}
    [(state, result)] = flow.rows("SELECT state, result FROM delivery_outbox WHERE id = 2")
    assert (state, json.loads(result)) == ("delivered", {"rejected": [1], "rejected_codes": ["MAILCHIMP_REFUSED"]})
    mailchimp.invalid.clear()
    flow.sync_lists("dst_mc")
    assert mailchimp.members("4001") == {"ada@example.com", "odd@example.com"}
    assert "odd@" not in shown(flow)


def test_throttles_lose_nothing_and_a_deleted_segment_is_created_again(flow_factory: Any,
                                                                       mailchimp: MailchimpListsFake) -> None:
    flow = flow_factory(destination(mailchimp))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_mc")
    mailchimp.fake.script.append(problem(429, "Too Many Requests", "You have exceeded the limit of 10 simultaneous"
                                         " connections."))
    flow.sync_lists("dst_mc")
    assert mailchimp.members("4001") == {"ada@example.com"}
    assert flow.rows("SELECT state, attempts FROM delivery_outbox ORDER BY id") == [("delivered", 1),
                                                                                    ("delivered", 2)]
    del mailchimp.segments["4001"]
    member(flow, 2, "grace@example.com")
    flow.sync_lists("dst_mc")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_mc")
    flow.sync_lists("dst_mc")
    assert mailchimp.members("4002") == {"ada@example.com", "grace@example.com"}
