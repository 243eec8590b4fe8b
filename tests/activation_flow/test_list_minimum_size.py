"""A vendor's minimum audience size: a new list is held, visibly, until the audience reaches it."""

from __future__ import annotations

from typing import Any

from typer.testing import CliRunner

from tests.activation_flow.conftest import AUDIENCE, AUDIENCE_ID, Flow
from tests.activation_flow.test_cli import _app
from tests.activation_flow.test_list_facebook import TOKEN, graph, sha  # noqa: F401  (fixture)
from tests.destinations.fakes.server import FakeVendor
from traitsync.activation.routes import destination_summary, overview_dict

REASON = ("held: 99 members with an identifier for this destination; Facebook Custom Audiences needs at least 100."
          " The list is created and uploaded once the audience reaches that size.")


def destination(fake: FakeVendor) -> str:
    return f"""\
  - id: dst_fb
    kind: facebook_custom_audiences
    settings: {{access_token: "{TOKEN}", ad_account_id: "1234", endpoint: "{fake.url}/v24.0"}}
    connections:
      - computation: {AUDIENCE}
"""


def members(flow: Flow, start: int, count: int) -> None:
    """Audience members with one email each, written as identity and the engine write them."""
    with flow.conn.transaction():
        for n in range(start, start + count):
            flow.conn.execute(
                "INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id, created_at_ms,"
                " first_message_id, event_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                ("email", f"user{n:03d}@example.com", "users", f"p{n:03d}", "src_web", 1, f"m{n}", n))
            flow.conn.execute("INSERT INTO computed_values (profile_id, computation_key, value, version,"
                              " updated_at_ms) VALUES (?, ?, ?, ?, ?)", (f"p{n:03d}", AUDIENCE, "true", 1, 1))


def test_below_the_vendors_minimum_the_list_is_held_with_the_reason_shown(flow_factory: Any,
                                                                            graph: FakeVendor) -> None:  # noqa: F811
    flow = flow_factory(destination(graph))
    members(flow, 0, 99)
    # A user without an email does not count: Meta could not match them.
    flow.identifier("p_anon", "anonymous_id", "a1")
    flow.result("p_anon", AUDIENCE, True)
    [result] = flow.stages.lists.sync_now("dst_fb")
    assert (result.held, result.messages, result.skipped) == (True, 0, REASON)
    flow.stages.delivery["dst_fb"].drain(include_retries=True, timeout=5)
    assert graph.requests == []  # nothing created, nothing sent, nothing dead-lettered
    assert flow.rows("SELECT COUNT(*) FROM delivery_outbox") == [(0,)]

    # The API shows the reason on the destination and in its delivery overview.
    dest = flow.stages.project.activation.by_id()["dst_fb"]
    summary = destination_summary(flow.db, dest, None)
    assert summary["min_audience_size"] == 100
    [status] = summary["lists"]
    assert {k: status[k] for k in ("audience", "computation_id", "state", "created", "list_id", "held_reason",
                                   "members_when_held", "identifiers_on_list")} == {
        "audience": AUDIENCE, "computation_id": AUDIENCE_ID, "state": "held", "created": False, "list_id": None,
        "held_reason": REASON, "members_when_held": 99, "identifiers_on_list": 0}
    assert overview_dict(flow.db, "dst_fb", 0, 2**62, lists=True)["lists"] == [status]
    # And so does the CLI.
    args = ["-c", flow.loaded.file, "--database-url", flow.db.url]
    out = CliRunner().invoke(_app(), ["destinations", "status", *args], env={"COLUMNS": "400"})
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if "dst_fb" in line)
    cells = [c.strip() for c in row.split("│")[1:-1]]
    assert cells[:5] == ["dst_fb", AUDIENCE, "held", "-", "0"] and cells[-1] == REASON

    # The 100th member: the next sync creates the list, the one after uploads every member.
    members(flow, 99, 1)
    flow.sync_lists("dst_fb")
    flow.sync_lists("dst_fb")
    [upload] = graph.on("POST", "/v24.0/23841/users")
    assert sorted(row[0] for row in upload.json()["payload"]["data"]) == sorted(
        sha(f"user{n:03d}@example.com") for n in range(100))
    [status] = destination_summary(flow.db, dest, None)["lists"]
    assert (status["state"], status["held_reason"], status["list_id"], status["identifiers_on_list"]) == (
        "synced", None, "23841", 100)


def test_a_list_already_created_keeps_syncing_below_the_minimum(flow_factory: Any,
                                                                 graph: FakeVendor) -> None:  # noqa: F811
    """Leavers must still be removed from the vendor's list when the audience shrinks."""
    flow = flow_factory(destination(graph))
    members(flow, 0, 100)
    flow.sync_lists("dst_fb")
    flow.sync_lists("dst_fb")
    with flow.conn.transaction():
        flow.conn.execute("UPDATE computed_values SET value = 'false' WHERE profile_id = ?", ("p000",))
    flow.sync_lists("dst_fb")
    [removed] = graph.on("DELETE", "/v24.0/23841/users")
    assert removed.json()["payload"]["data"] == [[sha("user000@example.com"), "", "", ""]]


def test_the_minimum_can_be_lowered_per_destination(flow_factory: Any, graph: FakeVendor) -> None:  # noqa: F811
    flow = flow_factory(destination(graph).replace("    connections:", "    min_audience_size: 2\n    connections:"))
    members(flow, 0, 1)
    [result] = flow.stages.lists.sync_now("dst_fb")
    assert result.held and "needs at least 2." in (result.skipped or "")
    members(flow, 1, 1)
    flow.sync_lists("dst_fb")
    assert len(graph.on("POST", "/v24.0/act_1234/customaudiences")) == 1
