"""Responsys (lists) against a local fake of the Responsys REST API, through activation and delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow
from tests.destinations.fakes.responsys import LIST, PASSWORD, USER
from tests.destinations.fakes.responsys_lists import ResponsysListsFake, responsys_lists_fake
from tests.destinations.fakes.server import Answer
from traitsync.activation.routes import debug_entry
from traitsync.delivery.overview import recent_messages

PET_URL = f"/rest/api/v1.3/lists/{LIST}/listExtensions/first_time_shopper/members"


@pytest.fixture
def rsys() -> Iterator[ResponsysListsFake]:
    with responsys_lists_fake() as fake:
        yield fake


def destination(fake: ResponsysListsFake) -> str:
    return f"""\
  - id: dst_rsys
    kind: responsys_lists
    settings: {{username: {USER}, userPassword: "{PASSWORD}", baseUrl: "{fake.url}", profileListName: {LIST},
                folderName: Audiences}}
    connections:
      - computation: {AUDIENCE}
"""


def member(flow: Flow, n: int, email: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    flow.result(f"p{n}", AUDIENCE, True)


def test_first_sync_creates_the_pet_then_merges_members_true_and_leavers_false(flow_factory: Any,
                                                                                rsys: ResponsysListsFake) -> None:
    flow = flow_factory(destination(rsys))
    member(flow, 1, " Ada@Example.com ")
    member(flow, 2, "bob@example.com")
    flow.sync_lists("dst_rsys")
    [created] = rsys.fake.on("POST", f"/rest/api/v1.3/lists/{LIST}/listExtensions")
    assert created.json() == {"profileExtension": {"objectName": "first_time_shopper", "folderName": "Audiences"},
                              "fields": [{"fieldName": "FIRST_TIME_SHOPPER", "fieldType": "STR500"}]}
    flow.sync_lists("dst_rsys")
    assert rsys.members_of("first_time_shopper") == {"ada@example.com", "bob@example.com", "u1", "u2"}
    flow.result("p2", AUDIENCE, False)
    member(flow, 3, "grace@example.com")
    flow.sync_lists("dst_rsys")
    assert rsys.members_of("first_time_shopper") == {"ada@example.com", "grace@example.com", "u1", "u3"}
    assert rsys.pets["first_time_shopper"]["bob@example.com"]["FIRST_TIME_SHOPPER"] == "false"
    profile_merges = rsys.fake.on("POST", f"/rest/api/v1.3/lists/{LIST}/members")
    assert all(r.json()["mergeRule"]["updateOnMatch"] == "NO_UPDATE" for r in profile_merges)
    assert rsys.fake.violations == []
    conn = flow.db.connect()
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_rsys")])
    conn.close()
    for plain in ("ada@", "Ada@", "bob@", "grace@", PASSWORD):
        assert plain not in debugger


def test_throttles_lose_nothing_and_a_deleted_pet_is_created_again(flow_factory: Any,
                                                                   rsys: ResponsysListsFake) -> None:
    flow = flow_factory(destination(rsys))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_rsys")
    rsys.fake.script.append(Answer(429, {"errorCode": "TOO_MANY_REQUESTS", "title": "slow down"},
                                   {"Retry-After": "0"}))
    flow.sync_lists("dst_rsys")
    assert rsys.members_of("first_time_shopper") == {"ada@example.com", "u1"}
    assert flow.rows("SELECT state, attempts FROM delivery_outbox ORDER BY id") == [("delivered", 1),
                                                                                    ("delivered", 2)]
    del rsys.pets["first_time_shopper"]
    member(flow, 2, "grace@example.com")
    flow.sync_lists("dst_rsys")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_rsys")
    flow.sync_lists("dst_rsys")
    assert rsys.members_of("first_time_shopper") == {"ada@example.com", "grace@example.com", "u1", "u2"}
