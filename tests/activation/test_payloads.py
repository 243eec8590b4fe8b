"""Golden tests: the seeds' six payload shapes, field for field."""

from __future__ import annotations

import re

from traitsync.activation.diff import ListDiff, ListMember
from traitsync.activation.ids import message_id
from traitsync.activation.payloads import (
    identify_message,
    integrations,
    iso_timestamp,
    list_messages,
    track_message,
)
from traitsync.activation.types import ActivationTarget, ComputationRef, ConnectionSettings, Identifier

TRAIT = ComputationRef(id="tra_abc", key="total_revenue_180_days", kind="trait", name="Total Revenue 180 Days")
AUDIENCE = ComputationRef(id="aud_123", key="first_time_shopper", kind="audience", name="First Time Shopper")
TARGET = ActivationTarget(destination_id="dst_braze", destination_name="Braze", space_id="spa_xyz")
U = Identifier("user_id", "u123")
TS = 1_700_000_000_123


def personas(comp: ComputationRef) -> dict[str, str]:
    return {"computation_class": comp.kind, "computation_id": comp.id, "computation_key": comp.key,
            "namespace": "spa_xyz", "space_id": "spa_xyz"}


def test_trait_identify() -> None:
    msg = identify_message(TRAIT, 450.0, U, TARGET, profile_id="p1", version=3, timestamp_ms=TS)
    assert msg == {
        "type": "identify", "userId": "u123", "traits": {"total_revenue_180_days": 450.0},
        "context": {"personas": personas(TRAIT)},
        "integrations": {"All": False, "Braze": True},
        "messageId": message_id("tra_abc", "p1", U, 3, "identify", 450.0),
        "timestamp": "2023-11-14T22:13:20.123Z",
    }


def test_trait_track() -> None:
    msg = track_message(TRAIT, 450.0, U, TARGET, profile_id="p1", version=3, timestamp_ms=TS)
    assert msg == {
        "type": "track", "event": "Trait Computed", "userId": "u123",
        "properties": {"trait_key": "total_revenue_180_days", "total_revenue_180_days": 450.0},
        "context": {"personas": personas(TRAIT)},
        "integrations": {"All": False, "Braze": True},
        "messageId": message_id("tra_abc", "p1", U, 3, "track", 450.0),
        "timestamp": "2023-11-14T22:13:20.123Z",
    }


def test_audience_identify_enter_and_exit() -> None:
    enter = identify_message(AUDIENCE, True, U, TARGET, profile_id="p1", version=1, timestamp_ms=TS)
    exit_ = identify_message(AUDIENCE, False, U, TARGET, profile_id="p1", version=2, timestamp_ms=TS)
    base = {"type": "identify", "userId": "u123", "context": {"personas": personas(AUDIENCE)},
            "integrations": {"All": False, "Braze": True}, "timestamp": "2023-11-14T22:13:20.123Z"}
    assert enter == {**base, "traits": {"first_time_shopper": True},
                     "messageId": message_id("aud_123", "p1", U, 1, "identify", True)}
    assert exit_ == {**base, "traits": {"first_time_shopper": False},
                     "messageId": message_id("aud_123", "p1", U, 2, "identify", False)}


def test_audience_track_enter_and_exit() -> None:
    enter = track_message(AUDIENCE, True, U, TARGET, profile_id="p1", version=1, timestamp_ms=TS)
    exit_ = track_message(AUDIENCE, False, U, TARGET, profile_id="p1", version=2, timestamp_ms=TS)
    base = {"type": "track", "userId": "u123", "context": {"personas": personas(AUDIENCE)},
            "integrations": {"All": False, "Braze": True}, "timestamp": "2023-11-14T22:13:20.123Z"}
    assert enter == {**base, "event": "Audience Entered",
                     "properties": {"audience_key": "first_time_shopper", "first_time_shopper": True},
                     "messageId": message_id("aud_123", "p1", U, 1, "track", True)}
    assert exit_ == {**base, "event": "Audience Exited",
                     "properties": {"audience_key": "first_time_shopper", "first_time_shopper": False},
                     "messageId": message_id("aud_123", "p1", U, 2, "track", False)}


def test_renamed_events() -> None:
    conn = ConnectionSettings(trait_event_name="Revenue Updated", entered_event_name="Joined",
                              exited_event_name="Left")
    common = {"profile_id": "p1", "version": 1, "timestamp_ms": TS, "connection": conn}
    assert track_message(TRAIT, 1.0, U, TARGET, **common)["event"] == "Revenue Updated"
    assert track_message(AUDIENCE, True, U, TARGET, **common)["event"] == "Joined"
    assert track_message(AUDIENCE, False, U, TARGET, **common)["event"] == "Left"


def test_integrations_object_uses_display_name() -> None:
    assert integrations("Order Webhook") == {"All": False, "Order Webhook": True}
    target = ActivationTarget("dst_1", "Order Webhook", "spa_xyz")
    msg = identify_message(TRAIT, 1, U, target, profile_id="p", version=1, timestamp_ms=0)
    assert msg["integrations"] == {"All": False, "Order Webhook": True}


def test_email_goes_to_traits_on_identify_and_context_traits_on_track() -> None:
    email = Identifier("email", "a@example.com")
    idents = [U, email]
    ident = identify_message(AUDIENCE, True, email, TARGET, profile_id="p1", version=1, timestamp_ms=TS,
                             profile_identifiers=idents)
    assert ident["userId"] == "u123"
    assert ident["traits"] == {"email": "a@example.com", "first_time_shopper": True}
    track = track_message(AUDIENCE, True, email, TARGET, profile_id="p1", version=1, timestamp_ms=TS,
                          profile_identifiers=idents)
    assert track["userId"] == "u123"
    assert track["context"] == {"personas": personas(AUDIENCE), "traits": {"email": "a@example.com"}}
    assert track["properties"] == {"audience_key": "first_time_shopper", "first_time_shopper": True}


def test_email_only_profile_and_anonymous_ids() -> None:
    email = Identifier("email", "a@example.com")
    msg = identify_message(TRAIT, 5, email, TARGET, profile_id="prof_9", version=1, timestamp_ms=TS,
                           profile_identifiers=[email])
    assert msg["anonymousId"] == "prof_9" and "userId" not in msg
    anon = Identifier("anonymous_id", "anon-1")
    msg = identify_message(TRAIT, 5, anon, TARGET, profile_id="prof_9", version=1, timestamp_ms=TS)
    assert msg["anonymousId"] == "anon-1" and "userId" not in msg
    assert msg["traits"] == {"total_revenue_180_days": 5}


def test_message_id_is_stable_and_distinct() -> None:
    a = message_id("tra_abc", "p1", U, 3, "identify", 450.0)
    assert a == message_id("tra_abc", "p1", U, 3, "identify", 450.0)
    assert re.fullmatch(r"personas_[0-9a-f]{32}", a)
    others = {message_id("tra_abd", "p1", U, 3, "identify", 450.0),
              message_id("tra_abc", "p2", U, 3, "identify", 450.0),
              message_id("tra_abc", "p1", Identifier("user_id", "u124"), 3, "identify", 450.0),
              message_id("tra_abc", "p1", Identifier("email", "u123"), 3, "identify", 450.0),
              message_id("tra_abc", "p1", U, 4, "identify", 450.0), message_id("tra_abc", "p1", U, 3, "track", 450.0),
              message_id("tra_abc", "p1", U, 3, "identify", 451.0), message_id("tra_abc", "p1", U, 3, "identify", None)}
    assert len(others) == 8 and a not in others
    m1 = identify_message(TRAIT, 1, U, TARGET, profile_id="p1", version=3, timestamp_ms=1)
    m2 = identify_message(TRAIT, 1, U, TARGET, profile_id="p1", version=3, timestamp_ms=99)
    assert m1["messageId"] == m2["messageId"]
    # The value is part of the id: one id never carries two values, whatever the versions say.
    m3 = identify_message(TRAIT, 2, U, TARGET, profile_id="p1", version=3, timestamp_ms=1)
    assert m3["messageId"] != m1["messageId"]
    # Audience entered, exited and entered again: three ids (versions are the causing offsets).
    ids = [identify_message(AUDIENCE, v, U, TARGET, profile_id="p1", version=n, timestamp_ms=1)["messageId"]
           for n, v in ((5, True), (9, False), (12, True))]
    assert len(set(ids)) == 3


def test_iso_timestamp() -> None:
    assert iso_timestamp(0) == "1970-01-01T00:00:00.000Z"
    assert iso_timestamp(1_700_000_000_007) == "2023-11-14T22:13:20.007Z"


def test_list_messages_batches_and_ids() -> None:
    members = tuple(ListMember(f"p{i}", Identifier("email", f"u{i}@x.io")) for i in range(5))
    diff = ListDiff(create=True, adds=members, removes=(ListMember("p9", Identifier("email", "old@x.io")),))
    msgs = list_messages(AUDIENCE, diff, TARGET, sync_id="2024-01-01T00", timestamp_ms=TS, batch_size=2)
    assert [(m["action"], len(m["members"])) for m in msgs] == [
        ("create", 0), ("remove", 1), ("add", 2), ("add", 2), ("add", 1)]
    assert msgs[1]["members"] == [{"type": "email", "value": "old@x.io"}]
    assert msgs[0]["audience"] == {"id": "aud_123", "key": "first_time_shopper", "name": "First Time Shopper"}
    assert all(m["type"] == "audience_list" and m["integrations"] == {"All": False, "Braze": True} for m in msgs)
    again = list_messages(AUDIENCE, diff, TARGET, sync_id="2024-01-01T00", timestamp_ms=TS + 5, batch_size=2)
    assert [m["messageId"] for m in again] == [m["messageId"] for m in msgs]
    later = list_messages(AUDIENCE, diff, TARGET, sync_id="2024-01-01T01", timestamp_ms=TS, batch_size=2)
    assert not {m["messageId"] for m in later} & {m["messageId"] for m in msgs}
    assert len({m["messageId"] for m in msgs}) == 5
