"""Salesforce Marketing Cloud Lists against a local fake tenant, through activation and delivery."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, Flow
from tests.destinations.fakes.salesforce_marketing_cloud import CLIENT_ID, CLIENT_SECRET
from tests.destinations.fakes.server import Answer
from tests.destinations.fakes.sfmc_lists import SfmcListsFake, sfmc_lists_fake
from traitsync.activation.routes import debug_entry
from traitsync.delivery.overview import recent_messages

KEY = "ts_first_time_shopper"


@pytest.fixture
def sfmc() -> Iterator[SfmcListsFake]:
    fake = sfmc_lists_fake()
    yield fake
    fake.stop()


def destination(fake: SfmcListsFake, extra: str = "") -> str:
    return f"""\
  - id: dst_sfmc
    kind: salesforce_marketing_cloud_lists
    settings: {{subdomain: "mc563885gzs27c5t9", client_id: "{CLIENT_ID}", client_secret: "{CLIENT_SECRET}",
                endpoint: "{fake.url}"{extra}}}
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
    debugger = json.dumps([debug_entry(e) for e in recent_messages(conn, "dst_sfmc")])
    conn.close()
    return debugger + json.dumps(flow.rows("SELECT code, detail, requests FROM delivery_attempts"))


def test_first_sync_creates_the_data_extension_then_upserts_and_deletes_rows(flow_factory: Any,
                                                                             sfmc: SfmcListsFake) -> None:
    flow = flow_factory(destination(sfmc, ", category_id: 4211"))
    member(flow, 1, " Ada@Example.com ")
    member(flow, 2, "bob@example.com")
    member(flow, 3)  # no email
    flow.sync_lists("dst_sfmc")
    assert [(r.method, r.path) for r in sfmc.fake.requests] == [
        ("POST", "/v2/token"), ("GET", f"/data/v1/customobjectdata/key/{KEY}/rowset"),
        ("POST", "/data/v1/customobjects")]
    assert sfmc.fake.requests[2].json() == {
        "name": "First Time Shopper", "key": KEY, "description": f"traitsync audience {AUDIENCE}",
        "fields": [{"name": "ContactKey", "type": "Text", "length": 254, "isPrimaryKey": True, "isNullable": False,
                    "ordinal": 0},
                   {"name": "EmailAddress", "type": "EmailAddress", "isPrimaryKey": False, "isNullable": True,
                    "ordinal": 1}],
        "categoryId": 4211}
    flow.sync_lists("dst_sfmc")
    [rowset] = sfmc.fake.on("POST", f"/hub/v1/dataevents/key:{KEY}/rowset")
    assert rowset.json() == [{"keys": {"ContactKey": "ada@example.com"}, "values": {"EmailAddress": "ada@example.com"}},
                             {"keys": {"ContactKey": "bob@example.com"}, "values": {"EmailAddress": "bob@example.com"}}]
    flow.result("p2", AUDIENCE, False)
    member(flow, 4, "grace@example.com")
    flow.sync_lists("dst_sfmc")
    assert [r.path for r in sfmc.fake.on("DELETE", "/hub")] == [
        f"/hub/v1/dataevents/key:{KEY}/rows/ContactKey:bob@example.com"]
    assert set(sfmc.rows(KEY)) == {"ada@example.com", "grace@example.com"}
    flow.sync_lists("dst_sfmc")
    assert len(sfmc.fake.requests) == 6  # token, find, create, rowset, delete, rowset: the last sync sent nothing
    assert sfmc.issued == 1
    assert sfmc.fake.violations == []
    text = shown(flow)
    for plain in ("ada@", "Ada@", "bob@", "grace@", CLIENT_SECRET):
        assert plain not in text


def test_user_id_as_contact_key(flow_factory: Any, sfmc: SfmcListsFake) -> None:
    flow = flow_factory(destination(sfmc, ', contact_key: "user_id"'))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_sfmc")
    flow.sync_lists("dst_sfmc")
    assert sfmc.rows(KEY) == {"u1": {}}


def test_a_refused_row_does_not_block_the_others_and_is_sent_again(flow_factory: Any, sfmc: SfmcListsFake) -> None:
    flow = flow_factory(destination(sfmc))
    for n, email in enumerate(("ada@example.com", "odd@example.com", "zed@example.com")):
        member(flow, n, email)
    sfmc.invalid.add("odd@example.com")
    flow.sync_lists("dst_sfmc")
    flow.sync_lists("dst_sfmc")
    # The rowset stopped at the bad row without naming it: replayed row by row.
    sizes = [len(r.json()) for r in sfmc.fake.on("POST", f"/hub/v1/dataevents/key:{KEY}/rowset")]
    assert sizes == [3, 1, 1, 1]
    assert set(sfmc.rows(KEY)) == {"ada@example.com", "zed@example.com"}
    [(state, result)] = flow.rows("SELECT state, result FROM delivery_outbox WHERE id = 2")
    assert (state, json.loads(result)) == ("delivered", {"rejected": [1], "rejected_codes": ["SFMC_ROW_REFUSED"]})
    sfmc.invalid.clear()
    flow.sync_lists("dst_sfmc")
    assert set(sfmc.rows(KEY)) == {"ada@example.com", "odd@example.com", "zed@example.com"}
    assert "odd@" not in shown(flow)


def test_throttles_lose_nothing_and_a_deleted_data_extension_is_created_again(flow_factory: Any,
                                                                              sfmc: SfmcListsFake) -> None:
    flow = flow_factory(destination(sfmc))
    member(flow, 1, "ada@example.com")
    flow.sync_lists("dst_sfmc")
    sfmc.fake.script.append(Answer(429, {"message": "Too many requests", "errorcode": 0}, {"Retry-After": "0"}))
    flow.sync_lists("dst_sfmc")
    assert set(sfmc.rows(KEY)) == {"ada@example.com"}
    assert flow.rows("SELECT state, attempts FROM delivery_outbox ORDER BY id") == [("delivered", 1),
                                                                                    ("delivered", 2)]
    del sfmc.extensions[KEY]
    member(flow, 2, "grace@example.com")
    flow.sync_lists("dst_sfmc")
    assert flow.rows("SELECT last_error_code FROM delivery_outbox WHERE state = 'dead'") == [("LIST_NOT_FOUND",)]
    flow.sync_lists("dst_sfmc")
    flow.sync_lists("dst_sfmc")
    assert set(sfmc.rows(KEY)) == {"ada@example.com", "grace@example.com"}
    assert len(sfmc.fake.on("POST", "/data/v1/customobjects")) == 2
