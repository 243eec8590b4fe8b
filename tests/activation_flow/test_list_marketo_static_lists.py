"""Marketo Static Lists against a local fake of Marketo's REST and Asset APIs, through activation and delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow, config_text
from tests.destinations.fakes.marketo import CLIENT_ID, CLIENT_SECRET, error
from tests.destinations.fakes.marketo_static_lists import StaticListsFake, static_lists_fake
from traitsync.activation.config import validate_destinations_section
from traitsync.activation.routes import debug_entry
from traitsync.config import load_config_text
from traitsync.definitions import load_definitions
from traitsync.delivery.overview import recent_messages


@pytest.fixture
def mkto() -> Iterator[StaticListsFake]:
    with static_lists_fake() as fake:
        yield fake


def destination(fake: StaticListsFake, schedule: str = "") -> str:
    return f"""\
  - id: dst_mkto
    kind: marketo_static_lists
    settings: {{client_id: "{CLIENT_ID}", client_secret: "{CLIENT_SECRET}", api_endpoint: "{fake.url}",
                folder_name: Audiences}}
{schedule}    connections:
      - computation: {AUDIENCE}
"""


def member(flow: Flow, n: int, email: str | None = None) -> None:
    flow.identifier(f"p{n}", "user_id", f"u{n}")
    if email:
        flow.identifier(f"p{n}", "email", email)
    flow.result(f"p{n}", AUDIENCE, True)


def debugger(flow: Flow) -> str:
    conn = flow.db.connect()
    text = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_mkto")])
    conn.close()
    return text


def test_first_sync_creates_the_static_list_then_adds_and_removes_leads(flow_factory: Any,
                                                                        mkto: StaticListsFake) -> None:
    flow = flow_factory(destination(mkto))
    member(flow, 1, " Ada@Example.com ")
    member(flow, 2, "known@x.io")  # already a lead
    member(flow, 3)
    flow.sync_lists("dst_mkto")
    assert mkto.names == {"First Time Shopper": 1001}
    assert mkto.fake.on("POST", "/rest/v1/lists/") == []
    flow.sync_lists("dst_mkto")
    assert mkto.emails_in(1001) == {"ada@example.com", "known@x.io"}
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, "grace@example.com")
    flow.sync_lists("dst_mkto")
    assert mkto.emails_in(1001) == {"ada@example.com", "grace@example.com"}
    assert "known@x.io" in mkto.leads  # leaving the list never deletes the lead
    [lookup] = [r for r in mkto.fake.on("POST", "/rest/v1/leads.json") if r.query.get("_method") == ["GET"]]
    assert lookup.form()["filterValues"] == ["known@x.io"]
    assert mkto.fake.violations == []
    text = debugger(flow)
    for plain in ("ada@", "Ada@", "known@", "grace@", CLIENT_SECRET):
        assert plain not in text


def test_a_skipped_record_does_not_fail_the_others_and_throttles_lose_nothing(flow_factory: Any,
                                                                              mkto: StaticListsFake) -> None:
    flow = flow_factory(destination(mkto))
    for n, email in enumerate(["ada@example.com", "bad@example.com", "grace@example.com"]):
        member(flow, n, email)
    mkto.reject.add("bad@example.com")
    flow.sync_lists("dst_mkto")
    mkto.fake.script.append(error("615", "Concurrent access limit reached"))
    flow.sync_lists("dst_mkto")
    assert mkto.emails_in(1001) == {"ada@example.com", "grace@example.com"}
    [(state, attempts, result)] = flow.rows("SELECT state, attempts, result FROM delivery_outbox WHERE id = 2")
    assert (state, attempts, json.loads(result)) == ("delivered", 2, {"skipped_members": 1})
    assert "bad@" not in debugger(flow)


def test_a_static_list_deleted_in_marketo_is_created_again(flow_factory: Any, mkto: StaticListsFake) -> None:
    flow = flow_factory(destination(mkto))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_mkto")
    flow.sync_lists("dst_mkto")
    del mkto.lists[1001], mkto.names["First Time Shopper"]
    member(flow, 2, "grace@example.com")
    flow.sync_lists("dst_mkto")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_mkto")
    flow.sync_lists("dst_mkto")
    assert mkto.emails_in(1002) == {"ada@example.com", "grace@example.com"}


def test_a_list_that_already_exists_is_found_by_name(flow_factory: Any, mkto: StaticListsFake) -> None:
    mkto.lists[1500], mkto.names["First Time Shopper"] = set(), 1500
    flow = flow_factory(destination(mkto))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_mkto")
    flow.sync_lists("dst_mkto")
    assert mkto.emails_in(1500) == {"ada@example.com"}


def test_validate_shows_the_engage_cap_and_floor(tmp_path: Path, mkto: StaticListsFake) -> None:
    text = config_text(destination(mkto, schedule="    schedule: {every: 30m}\n"))
    (tmp_path / "traitsync.yaml").write_text(text)
    loaded = load_config_text(text, file=str(tmp_path / "traitsync.yaml"))
    lines = validate_destinations_section(loaded, load_definitions(loaded.document))
    assert "(marketo_static_lists, list, 5 req/s, every 1h (schedule 30m raised to the Marketo Static Lists floor))" \
        in lines[1]
