"""What an adapter sees besides the message: the previous state, and the traits it needs."""

from __future__ import annotations

import json
from typing import Any

from tests.activation_flow.conftest import AUDIENCE, TRAIT, Receiver
from traitsync.delivery.outbox import OutboxRow
from traitsync.delivery.worker import item_for


def hook(receiver: Receiver) -> str:
    return f"""\
  - id: dst_in
    kind: webhook
    settings: {{url: "{receiver.url}/in"}}
    connections:
      - computation: {TRAIT}
        send: [identify]
        enrich_traits: [first_name, plan, missing_trait]
      - computation: {AUDIENCE}
        send: [track]
"""


def set_trait(flow: Any, profile_id: str, key: str, value: Any) -> None:
    with flow.conn.transaction():
        flow.conn.execute("INSERT INTO profile_traits (profile_id, key, value, source_id, updated_at_ms, event_offset)"
                          " VALUES (?, ?, ?, ?, ?, ?)", (profile_id, key, json.dumps(value), "src_web", 1, 1))


def test_previous_state_and_enriched_traits(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver))
    flow.identifier("p1", "user_id", "u1")
    flow.identifier("p1", "email", "a@x.io")
    set_trait(flow, "p1", "first_name", "Ada")
    set_trait(flow, "p1", "plan", "gold")
    flow.result("p1", TRAIT, 10)
    flow.run()
    flow.result("p1", TRAIT, 25)
    flow.run()
    identifies = [m for m in receiver.messages() if m["type"] == "identify"]
    # Trait Enrichment: the chosen traits ride in traits.* (a trait the profile lacks is left out).
    assert [(m.get("userId"), m["traits"]) for m in identifies] == [
        ("u1", {TRAIT: 10, "first_name": "Ada", "plan": "gold"}),
        ("u1", {TRAIT: 10, "email": "a@x.io", "first_name": "Ada", "plan": "gold"}),
        ("u1", {TRAIT: 25, "first_name": "Ada", "plan": "gold"}),
        ("u1", {TRAIT: 25, "email": "a@x.io", "first_name": "Ada", "plan": "gold"}),
    ]
    rows = flow.rows("SELECT id, destination_id, order_key, message_id, message_type, computation_id, state,"
                     " attempts, created_at_ms, first_attempt_at_ms, next_attempt_at_ms, last_error_code, body, meta,"
                     " adapter_input FROM delivery_outbox ORDER BY id")
    items = [item_for(OutboxRow.from_db(r), flow.stages.delivery["dst_in"].target) for r in rows]
    # The first sync had nothing before it; the change to 25 sees 10 and both identifiers it went to.
    assert [i.previous for i in items[:2]] == [None, None]
    assert {(i.previous.value, i.previous.identifiers) for i in items[2:] if i.previous} == {
        (10, (("email", "a@x.io"), ("user_id", "u1")))}
