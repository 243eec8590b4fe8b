"""Iterable Lists against a local fake of Iterable's list API, through activation and delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow
from tests.destinations.fakes.iterable_lists import API_KEY, IterableFake, iterable_fake
from tests.destinations.fakes.server import Answer
from traitsync.activation.routes import debug_entry
from traitsync.delivery.overview import recent_messages


@pytest.fixture
def iterable() -> Iterator[IterableFake]:
    fake = iterable_fake()
    yield fake
    fake.stop()


def destination(fake: IterableFake) -> str:
    return f"""\
  - id: dst_it
    kind: iterable_lists
    settings: {{apiKey: "{API_KEY}", endpoint: "{fake.url}"}}
    connections:
      - computation: {AUDIENCE}
"""


def member(flow: Flow, n: int, email: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    flow.result(f"p{n}", AUDIENCE, True)


def test_first_sync_creates_the_list_then_subscribes_and_unsubscribes(flow_factory: Any,
                                                                      iterable: IterableFake) -> None:
    flow = flow_factory(destination(iterable))
    member(flow, 1, " Ada@Example.com ")
    member(flow, 2, "bob@example.com")
    flow.sync_lists("dst_it")
    assert [r.json()["name"] for r in iterable.fake.on("POST", "/api/lists")] == ["First Time Shopper"]
    flow.sync_lists("dst_it")
    assert iterable.lists[7001] == {"ada@example.com", "bob@example.com", "user:u1", "user:u2"}
    flow.result("p2", AUDIENCE, False)
    member(flow, 3, "grace@example.com")
    flow.sync_lists("dst_it")
    assert iterable.lists[7001] == {"ada@example.com", "grace@example.com", "user:u1", "user:u3"}
    [unsubscribe] = iterable.fake.on("POST", "/api/lists/unsubscribe")
    assert unsubscribe.json()["channelUnsubscribe"] is False
    assert iterable.fake.violations == []
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_it")])
    conn.close()
    for plain in ("ada@", "Ada@", "bob@", "grace@", API_KEY):
        assert plain not in debugger


def test_refused_emails_do_not_fail_the_others_and_throttles_lose_nothing(flow_factory: Any,
                                                                          iterable: IterableFake) -> None:
    flow = flow_factory(destination(iterable))
    member(flow, 1, "ada@example.com")
    member(flow, 2, "weird@example.c0m")
    flow.sync_lists("dst_it")
    iterable.fake.script.append(Answer(429, {"msg": "Rate limit exceeded", "code": "RateLimitExceeded"},
                                       {"Retry-After": "0"}))
    flow.sync_lists("dst_it")
    assert iterable.lists[7001] == {"ada@example.com", "user:u1", "user:u2"}
    [(state, attempts, result)] = flow.rows("SELECT state, attempts, result FROM delivery_outbox WHERE id = 2")
    assert (state, attempts, json.loads(result)) == ("delivered", 2, {"refused_members": 1})


def test_a_list_deleted_at_iterable_is_created_again(flow_factory: Any, iterable: IterableFake) -> None:
    flow = flow_factory(destination(iterable))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_it")
    flow.sync_lists("dst_it")
    del iterable.lists[7001]
    member(flow, 2, "grace@example.com")
    flow.sync_lists("dst_it")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_it")
    flow.sync_lists("dst_it")
    assert iterable.lists[7002] == {"ada@example.com", "grace@example.com", "user:u1", "user:u2"}
