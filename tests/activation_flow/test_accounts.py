"""Account-level computations to event destinations: group calls, and calls per member user.

Real identity (group calls resolved into accounts and links), account results written by the
engines' result writer, activation and delivery to the recording HTTP receiver, on SQLite and
PostgreSQL (the ``db`` fixture runs each test on both).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.account_flow import (
    ACC_AUDIENCE,
    ACC_AUDIENCE_ID,
    ACC_TRAIT,
    ACC_TRAIT_ID,
    ACCOUNT_CONFIG,
    AccountFlow,
)
from tests.activation_flow.conftest import Receiver
from traitsync.activation.ids import message_id
from traitsync.activation.types import Identifier
from traitsync.config import load_config_text
from traitsync.errors import ConfigError
from traitsync.server.project import resolve_project
from traitsync.store import Database

TS = "2023-11-14T22:13:20.123Z"


def personas(cls: str, comp_id: str, key: str) -> dict[str, str]:
    return {"computation_class": cls, "computation_id": comp_id, "computation_key": key,
            "namespace": "spa_xyz", "space_id": "spa_xyz"}


def hook(receiver: Receiver, audience_send: str, trait_send: str | None = None) -> str:
    trait = f"""      - computation: {ACC_TRAIT}
        send: {trait_send}
""" if trait_send else ""
    return f"""\
  - id: dst_b2b
    name: CRM Webhook
    kind: webhook
    settings: {{url: "{receiver.url}/hook"}}
    connections:
      - computation: {ACC_AUDIENCE}
        send: {audience_send}
{trait}"""


@pytest.fixture
def accounts(db: Database, tmp_path: Path) -> Iterator[Any]:
    made: list[AccountFlow] = []

    def make(destinations: str) -> AccountFlow:
        flow = AccountFlow(db, destinations, tmp_path)
        made.append(flow)
        return flow

    yield make
    for flow in made:
        flow.close()


def test_group_payloads_field_for_field(accounts: Any, receiver: Receiver) -> None:
    flow = accounts(hook(receiver, "[group]", "[group]"))
    flow.group("u1", "g_acme", plan="enterprise", name="Acme")
    flow.group("u2", "g_acme")
    flow.group("u3", "g_beta", plan="free")
    flow.run()  # connect: no account has a value yet
    assert receiver.messages() == []
    acme = flow.account("g_acme")
    gid = Identifier("group_id", "g_acme")
    flow.publish(ACC_AUDIENCE, {"g_acme": True, "g_beta": False})
    flow.publish(ACC_TRAIT, {"g_acme": 5})
    flow.run()
    integrations = {"All": False, "CRM Webhook": True}
    assert receiver.messages() == [
        {"type": "group", "anonymousId": acme, "groupId": "g_acme", "traits": {ACC_AUDIENCE: True},
         "context": {"personas": personas("audience", ACC_AUDIENCE_ID, ACC_AUDIENCE)},
         "integrations": integrations, "messageId": message_id(ACC_AUDIENCE_ID, acme, gid, 1, "group", True),
         "timestamp": TS},
        {"type": "group", "anonymousId": acme, "groupId": "g_acme", "traits": {ACC_TRAIT: 5},
         "context": {"personas": personas("trait", ACC_TRAIT_ID, ACC_TRAIT)},
         "integrations": integrations, "messageId": message_id(ACC_TRAIT_ID, acme, gid, 1, "group", 5),
         "timestamp": TS},
    ]  # one call per account whose value changed: beta's false was never true, nothing to send
    flow.publish(ACC_AUDIENCE, {"g_acme": False}, as_of_ms=1_700_000_060_000, cause="timer")
    flow.publish(ACC_TRAIT, {"g_acme": 7}, as_of_ms=1_700_000_060_000)
    flow.run()
    assert receiver.messages()[2:] == [
        {"type": "group", "anonymousId": acme, "groupId": "g_acme", "traits": {ACC_AUDIENCE: False},
         "context": {"personas": personas("audience", ACC_AUDIENCE_ID, ACC_AUDIENCE)},
         "integrations": integrations, "messageId": message_id(ACC_AUDIENCE_ID, acme, gid, 2, "group", False),
         "timestamp": "2023-11-14T22:14:20.000Z"},
        {"type": "group", "anonymousId": acme, "groupId": "g_acme", "traits": {ACC_TRAIT: 7},
         "context": {"personas": personas("trait", ACC_TRAIT_ID, ACC_TRAIT)},
         "integrations": integrations, "messageId": message_id(ACC_TRAIT_ID, acme, gid, 2, "group", 7),
         "timestamp": "2023-11-14T22:14:20.000Z"},
    ]
    flow.run()  # nothing new: nothing sent twice
    assert len(receiver.messages()) == 4


def test_first_sync_sends_a_group_call_per_account_with_a_value(accounts: Any, receiver: Receiver) -> None:
    flow = accounts(hook(receiver, "[group]"))
    for user, group in (("u1", "g_a"), ("u2", "g_b"), ("u3", "g_c")):
        flow.group(user, group)
    flow.publish(ACC_AUDIENCE, {"g_a": True, "g_b": True, "g_c": False})
    flow.run()  # the connection is new: every account in the audience, once
    assert sorted((m["type"], m["groupId"], m["traits"][ACC_AUDIENCE]) for m in receiver.messages()) == [
        ("group", "g_a", True), ("group", "g_b", True)]


def test_first_sync_per_member_in_chunks_sends_each_member_once(accounts: Any, receiver: Receiver) -> None:
    flow = accounts(hook(receiver, "[identify]"))
    flow.stages.activation.batch = 2  # one account per first-sync transaction
    for user, group in (("u1", "g_a"), ("u2", "g_a"), ("u3", "g_b"), ("u4", "g_c"), ("u2", "g_c"), ("u5", "g_d")):
        flow.group(user, group)
    flow.publish(ACC_AUDIENCE, {"g_a": True, "g_b": True, "g_c": True, "g_d": False})
    flow.run()
    assert sorted(identify_of(receiver.messages())) == [("u1", True), ("u2", True), ("u3", True), ("u4", True)]
    assert flow.rows("SELECT first_sync_done FROM activation_connections") in ([(True,)], [(1,)])


def identify_of(messages: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    return [(m["userId"], m["traits"][ACC_AUDIENCE]) for m in messages if m["type"] == "identify"]


def test_identify_and_track_per_member_user(accounts: Any, receiver: Receiver) -> None:
    flow = accounts(hook(receiver, "[identify, track]"))
    flow.group("u1", "g_acme")
    flow.group("u2", "g_acme")  # never performs anything: still a member of the account
    flow.group("u3", "g_beta")
    flow.identify("u1", email="ada@example.com")
    flow.run()
    flow.publish(ACC_AUDIENCE, {"g_acme": True})
    flow.run()
    u1, u2 = flow.user("u1"), flow.user("u2")
    audience = personas("audience", ACC_AUDIENCE_ID, ACC_AUDIENCE)
    integrations = {"All": False, "CRM Webhook": True}
    got = sorted(receiver.messages(), key=lambda m: (m["type"], m["userId"], m["messageId"]))
    identify_email = Identifier("email", "ada@example.com")
    assert got == sorted([
        {"type": "identify", "userId": "u1", "traits": {ACC_AUDIENCE: True}, "context": {"personas": audience},
         "integrations": integrations, "timestamp": TS,
         "messageId": message_id(ACC_AUDIENCE_ID, u1, Identifier("user_id", "u1"), 1, "identify", True)},
        {"type": "identify", "userId": "u1", "traits": {"email": "ada@example.com", ACC_AUDIENCE: True},
         "context": {"personas": audience}, "integrations": integrations, "timestamp": TS,
         "messageId": message_id(ACC_AUDIENCE_ID, u1, identify_email, 1, "identify", True)},
        {"type": "identify", "userId": "u2", "traits": {ACC_AUDIENCE: True}, "context": {"personas": audience},
         "integrations": integrations, "timestamp": TS,
         "messageId": message_id(ACC_AUDIENCE_ID, u2, Identifier("user_id", "u2"), 1, "identify", True)},
        {"type": "track", "event": "Audience Entered", "userId": "u1",
         "properties": {"audience_key": ACC_AUDIENCE, ACC_AUDIENCE: True}, "context": {"personas": audience},
         "integrations": integrations, "timestamp": TS,
         "messageId": message_id(ACC_AUDIENCE_ID, u1, Identifier("user_id", "u1"), 1, "track", True)},
        {"type": "track", "event": "Audience Entered", "userId": "u1",
         "properties": {"audience_key": ACC_AUDIENCE, ACC_AUDIENCE: True},
         "context": {"personas": audience, "traits": {"email": "ada@example.com"}},
         "integrations": integrations, "timestamp": TS,
         "messageId": message_id(ACC_AUDIENCE_ID, u1, identify_email, 1, "track", True)},
        {"type": "track", "event": "Audience Entered", "userId": "u2",
         "properties": {"audience_key": ACC_AUDIENCE, ACC_AUDIENCE: True}, "context": {"personas": audience},
         "integrations": integrations, "timestamp": TS,
         "messageId": message_id(ACC_AUDIENCE_ID, u2, Identifier("user_id", "u2"), 1, "track", True)},
    ], key=lambda m: (m["type"], m["userId"], m["messageId"]))  # u3's account is not in it: nothing


def test_members_joining_leaving_and_moving(accounts: Any, receiver: Receiver) -> None:
    flow = accounts(hook(receiver, "[identify]"))
    flow.group("u1", "g_acme")
    flow.group("u2", "g_acme")
    flow.group("u3", "g_beta")
    flow.group("u5", "g_acme")
    flow.group("u5", "g_gamma")  # in two accounts
    flow.run()
    flow.publish(ACC_AUDIENCE, {"g_acme": True, "g_gamma": True})
    flow.run()
    assert sorted(identify_of(receiver.messages())) == [("u1", True), ("u2", True), ("u5", True)]  # u5 once
    seen = len(receiver.messages())

    flow.group("u4", "g_acme")  # joins an account that is in the audience: the entry
    flow.run()
    assert identify_of(receiver.messages()[seen:]) == [("u4", True)]
    seen = len(receiver.messages())

    flow.move("u1", "g_acme", "g_beta")  # moves to an account that is not: the exit
    flow.run()
    assert identify_of(receiver.messages()[seen:]) == [("u1", False)]
    seen = len(receiver.messages())

    flow.move("u5", "g_gamma", "g_beta")  # still in acme, which matches: nothing changes for u5
    flow.run()
    assert receiver.messages()[seen:] == []

    flow.end_link("u2", "g_acme")  # a link ended with no group call: published as a profile change
    with flow.conn.transaction():
        flow.conn.execute(
            "INSERT INTO profile_changes (kind, collection, profile_id, other_profile_id, id_type, value,"
            " trait_keys, event_offset, message_id, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ("unlinked", "accounts", flow.account("g_acme"), flow.user("u2"), None, None, None, None, None,
             1_700_000_000_000))
    flow.run()
    assert identify_of(receiver.messages()[seen:]) == [("u2", False)]
    seen = len(receiver.messages())

    flow.publish(ACC_AUDIENCE, {"g_acme": False}, as_of_ms=1_700_000_060_000)  # the account exits
    flow.run()
    assert sorted(identify_of(receiver.messages()[seen:])) == [("u4", False), ("u5", False)]
    flow.run()
    assert sorted(identify_of(receiver.messages())) == sorted([
        ("u1", True), ("u2", True), ("u5", True), ("u4", True), ("u1", False), ("u2", False), ("u4", False),
        ("u5", False)])


def test_account_trait_per_member_takes_the_latest_linked_account(accounts: Any, receiver: Receiver) -> None:
    flow = accounts(hook(receiver, "[group]", "[identify]"))
    flow.group("u1", "g_acme")
    flow.group("u1", "g_beta")  # linked later: its value wins for u1
    flow.group("u2", "g_acme")
    flow.run()
    flow.publish(ACC_TRAIT, {"g_acme": 3, "g_beta": 9})
    flow.run()
    identifies = sorted((m["userId"], m["traits"][ACC_TRAIT]) for m in receiver.messages()
                        if m["type"] == "identify")
    assert identifies == [("u1", 9), ("u2", 3)]


def test_historical_false_sends_only_changes_after_the_connection(db: Database, tmp_path: Path,
                                                                  receiver: Receiver) -> None:
    config = ACCOUNT_CONFIG.replace("    level: account\n    condition:", "    level: account\n"
                                    "    historical: false\n    condition:")
    flow = AccountFlow(db, hook(receiver, "[group, identify]"), tmp_path, config=config)
    try:
        flow.group("u1", "g_acme")
        flow.group("u2", "g_beta")
        flow.publish(ACC_AUDIENCE, {"g_acme": True})
        flow.run()  # first sync: acme and u1 were in before the connection, recorded silently
        assert receiver.messages() == []
        flow.publish(ACC_AUDIENCE, {"g_beta": True})
        flow.run()
        assert sorted((m["type"], m.get("groupId") or m["userId"]) for m in receiver.messages()) == [
            ("group", "g_beta"), ("identify", "u2")]
    finally:
        flow.close()


@pytest.mark.parametrize(("send", "message"), [
    ("[group]", "send: group needs an account-level computation (level: account); 'shoppers' is user-level: "
                "use identify and/or track"),
    ("[]", "send must include identify or track"),
])
def test_group_on_a_user_computation_is_refused(tmp_path: Path, send: str, message: str) -> None:
    text = ACCOUNT_CONFIG.replace("audiences:\n", "audiences:\n  - key: shoppers\n    condition:\n"
                                  "      performed: {event: Order Completed}\n", 1) + f"""\
  - id: dst_x
    kind: webhook
    settings: {{url: "http://127.0.0.1:1/x"}}
    connections:
      - computation: shoppers
        send: {send}
"""
    with pytest.raises(ConfigError) as info:
        resolve_project(load_config_text(text, file=str(tmp_path / "traitsync.yaml")))
    assert str(info.value).endswith(message)
    assert "[destinations[0].connections[0].send]" in str(info.value)


def test_group_to_a_destination_without_group_calls_is_refused(tmp_path: Path) -> None:
    text = ACCOUNT_CONFIG + f"""\
  - id: dst_braze
    kind: braze
    settings: {{api_key: k, endpoint: "http://127.0.0.1:1"}}
    connections:
      - computation: {ACC_AUDIENCE}
        send: [group]
"""
    with pytest.raises(ConfigError) as info:
        resolve_project(load_config_text(text, file=str(tmp_path / "traitsync.yaml")))
    assert str(info.value).endswith("destination 'dst_braze' (braze) does not take group calls (it takes "
                                    "identify, track); send the account computation per member user instead")
