"""List destinations end to end: create + upload all on first sync, then only adds/removes, on a cadence."""

from __future__ import annotations

from typing import Any

from tests.activation_flow.conftest import AUDIENCE, AUDIENCE_ID, Receiver
from traitsync.activation.lists import ListScheduler
from traitsync.delivery.outbox import now_ms


def list_dest(receiver: Receiver, every: str = "1h") -> str:
    return f"""\
  - id: dst_list
    name: Webhook Audiences
    kind: webhook
    settings: {{url: "{receiver.url}/list"}}
    schedule: {{every: {every}}}
    connections:
      - computation: {AUDIENCE}
"""


def ops(receiver: Receiver, start: int = 0) -> list[tuple[str, list[str]]]:
    return [(m["action"], [f"{x['type']}:{x['value']}" for x in m["members"]]) for m in receiver.messages()[start:]]


def test_first_sync_creates_and_uploads_all_then_only_diffs(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(list_dest(receiver))
    for n in range(3):
        flow.identifier(f"p{n}", "user_id", f"u{n}")
        flow.result(f"p{n}", AUDIENCE, True)
    flow.identifier("p0", "email", "zero@x.com")
    flow.sync_lists("dst_list")
    assert ops(receiver) == [("create", []), ("add", ["email:zero@x.com", "user_id:u0", "user_id:u1", "user_id:u2"])]
    first = receiver.messages()[0]
    assert first["audience"] == {"id": AUDIENCE_ID, "key": AUDIENCE, "name": "First Time Shopper"}
    assert first["integrations"] == {"All": False, "Webhook Audiences": True}
    assert first["context"]["personas"]["computation_key"] == AUDIENCE
    assert flow.rows("SELECT created FROM activation_lists") in ([(1,)], [(True,)])

    flow.sync_lists("dst_list")  # nothing changed: nothing sent
    assert len(receiver.messages()) == 2

    flow.result("p1", AUDIENCE, False)
    flow.identifier("p3", "user_id", "u3")
    flow.result("p3", AUDIENCE, True)
    flow.sync_lists("dst_list")
    assert ops(receiver, 2) == [("remove", ["user_id:u1"]), ("add", ["user_id:u3"])]
    held = flow.rows("SELECT id_value FROM activation_list_members ORDER BY id_value")
    assert [r[0] for r in held] == ["u0", "u2", "u3", "zero@x.com"]


def test_batches_in_the_vendors_batch_size(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(list_dest(receiver))
    for n in range(2500):
        flow.conn.execute(
            "INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id, created_at_ms,"
            " first_message_id, event_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            ("user_id", f"u{n:05d}", "users", f"p{n:05d}", "src", 1, "m", n))
        flow.conn.execute("INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms)"
                          " VALUES (?, ?, ?, ?, ?)", (f"p{n:05d}", AUDIENCE, "true", 1, 1))
    flow.conn.commit()
    flow.sync_lists("dst_list")
    assert [(a, len(m)) for a, m in ops(receiver)] == [("create", 0), ("add", 1000), ("add", 1000), ("add", 500)]


def test_failed_batch_is_planned_again_next_sync(flow_factory: Any, receiver: Receiver) -> None:
    from tests.delivery.conftest import Reply

    flow = flow_factory(list_dest(receiver))
    flow.identifier("p0", "user_id", "u0")
    flow.result("p0", AUDIENCE, True)
    receiver.script = [Reply(), Reply(status=400)]  # create ok, the add is rejected -> dead letter
    flow.sync_lists("dst_list")
    assert flow.rows("SELECT COUNT(*) FROM activation_list_members") == [(0,)]
    flow.sync_lists("dst_list")
    assert ops(receiver)[-1] == ("add", ["user_id:u0"])
    assert flow.rows("SELECT COUNT(*) FROM activation_list_members") == [(1,)]


def test_schedule_cadence(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(list_dest(receiver, every="2h"))
    clock = [now_ms()]
    scheduler = ListScheduler(flow.db, flow.stages.project.activation, clock=lambda: clock[0])
    flow.identifier("p0", "user_id", "u0")
    flow.result("p0", AUDIENCE, True)
    assert [(r.created, r.adds) for r in scheduler.sync_due()] == [(True, 1)]  # a new audience syncs at once
    flow.stages.delivery["dst_list"].drain(include_retries=True)
    flow.identifier("p1", "user_id", "u1")
    flow.result("p1", AUDIENCE, True)
    clock[0] += 2 * 3600_000 - 1
    assert scheduler.sync_due() == []  # not due yet
    clock[0] += 1
    assert [(r.created, r.adds) for r in scheduler.sync_due()] == [(False, 1)]
    clock[0] += 60_000
    assert scheduler.sync_due() == []
