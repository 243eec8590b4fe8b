"""The seeds' six payloads, produced end to end from result rows and received over HTTP."""

from __future__ import annotations

from typing import Any

from tests.activation_flow.conftest import AUDIENCE, AUDIENCE_ID, TRAIT, TRAIT_ID, Receiver
from traitsync.activation.ids import message_id
from traitsync.activation.types import Identifier

U = Identifier("user_id", "u123")
TS = "2023-11-14T22:13:20.123Z"


def personas(cls: str, comp_id: str, key: str) -> dict[str, str]:
    return {"computation_class": cls, "computation_id": comp_id, "computation_key": key,
            "namespace": "spa_xyz", "space_id": "spa_xyz"}


def hook(receiver: Receiver, name: str = "Braze", extra: str = "") -> str:
    return f"""\
  - id: dst_events
    name: {name}
    kind: webhook
    settings: {{url: "{receiver.url}/hook"}}
    connections:
      - computation: {TRAIT}
        send: [identify, track]
      - computation: {AUDIENCE}
        send: [identify, track]
{extra}"""


def by_type(messages: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(m["type"], m.get("event", "")): m for m in messages}


def test_six_seed_payloads_field_for_field(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver))
    flow.identifier("p1", "user_id", "u123")
    flow.run()  # first sync: nothing has a value yet
    assert receiver.messages() == []
    flow.result("p1", TRAIT, 450.0)
    flow.result("p1", AUDIENCE, True)
    flow.run()
    got = by_type(receiver.messages())
    integrations = {"All": False, "Braze": True}
    trait_identify = next(m for m in receiver.messages() if m["type"] == "identify" and TRAIT in m["traits"])
    assert trait_identify == {
        "type": "identify", "userId": "u123", "traits": {TRAIT: 450.0},
        "context": {"personas": personas("trait", TRAIT_ID, TRAIT)}, "integrations": integrations,
        "messageId": message_id(TRAIT_ID, "p1", U, 1, "identify", 450.0), "timestamp": TS}
    assert got[("track", "Trait Computed")] == {
        "type": "track", "event": "Trait Computed", "userId": "u123",
        "properties": {"trait_key": TRAIT, TRAIT: 450.0},
        "context": {"personas": personas("trait", TRAIT_ID, TRAIT)}, "integrations": integrations,
        "messageId": message_id(TRAIT_ID, "p1", U, 1, "track", 450.0), "timestamp": TS}
    audience_identify = next(m for m in receiver.messages() if m["type"] == "identify" and AUDIENCE in m["traits"])
    assert audience_identify == {
        "type": "identify", "userId": "u123", "traits": {AUDIENCE: True},
        "context": {"personas": personas("audience", AUDIENCE_ID, AUDIENCE)}, "integrations": integrations,
        "messageId": message_id(AUDIENCE_ID, "p1", U, 1, "identify", True), "timestamp": TS}
    assert got[("track", "Audience Entered")] == {
        "type": "track", "event": "Audience Entered", "userId": "u123",
        "properties": {"audience_key": AUDIENCE, AUDIENCE: True},
        "context": {"personas": personas("audience", AUDIENCE_ID, AUDIENCE)}, "integrations": integrations,
        "messageId": message_id(AUDIENCE_ID, "p1", U, 1, "track", True), "timestamp": TS}
    assert len(receiver.messages()) == 4

    flow.result("p1", AUDIENCE, False, cause="timer", as_of_ms=1_700_000_060_000)
    flow.run()
    exits = receiver.messages()[4:]
    assert exits == [
        {"type": "identify", "userId": "u123", "traits": {AUDIENCE: False},
         "context": {"personas": personas("audience", AUDIENCE_ID, AUDIENCE)}, "integrations": integrations,
         "messageId": message_id(AUDIENCE_ID, "p1", U, 2, "identify", False), "timestamp": "2023-11-14T22:14:20.000Z"},
        {"type": "track", "event": "Audience Exited", "userId": "u123",
         "properties": {"audience_key": AUDIENCE, AUDIENCE: False},
         "context": {"personas": personas("audience", AUDIENCE_ID, AUDIENCE)}, "integrations": integrations,
         "messageId": message_id(AUDIENCE_ID, "p1", U, 2, "track", False), "timestamp": "2023-11-14T22:14:20.000Z"},
    ]


def test_renamed_events_and_display_name(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(f"""\
  - id: dst_renamed
    name: Order Webhook
    kind: webhook
    settings: {{url: "{receiver.url}/hook"}}
    connections:
      - computation: {TRAIT}
        send: [track]
        trait_event_name: Revenue Updated
      - computation: {AUDIENCE}
        send: [track]
        entered_event_name: Shopper In
        exited_event_name: Shopper Out
""")
    flow.identifier("p1", "user_id", "u1")
    flow.run()  # connect first: later results stream one by one
    flow.result("p1", TRAIT, 10)
    flow.result("p1", AUDIENCE, True)
    flow.result("p1", AUDIENCE, False)
    flow.run()
    msgs = receiver.messages()
    assert [(m["type"], m["event"]) for m in msgs] == [
        ("track", "Revenue Updated"), ("track", "Shopper In"), ("track", "Shopper Out")]
    assert all(m["integrations"] == {"All": False, "Order Webhook": True} for m in msgs)
    assert msgs[0]["properties"] == {"trait_key": TRAIT, TRAIT: 10}


def test_email_goes_in_traits_and_context_traits(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver))
    flow.identifier("p1", "user_id", "u1")
    flow.identifier("p1", "email", "a@example.com")
    flow.result("p1", AUDIENCE, True)
    flow.run()
    msgs = receiver.messages()
    identify_email = [m for m in msgs if m["type"] == "identify" and "email" in m["traits"]]
    track_email = [m for m in msgs if m["type"] == "track" and "traits" in m["context"]]
    assert [m["traits"] for m in identify_email] == [{"email": "a@example.com", AUDIENCE: True}]
    assert [m["userId"] for m in identify_email] == ["u1"]
    assert [m["context"]["traits"] for m in track_email] == [{"email": "a@example.com"}]
    assert len(msgs) == 4  # identify + track for the userId and for the email
