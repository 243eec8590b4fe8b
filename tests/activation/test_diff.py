"""What gets sent, given what the destination last confirmed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traitsync.activation.diff import (
    ListMember,
    Send,
    Snapshot,
    confirm,
    plan_event_sync,
    plan_list_sync,
)
from traitsync.activation.payloads import activate
from traitsync.activation.types import (
    ActivationTarget,
    ComputationRef,
    ConnectionSettings,
    Identifier,
    ResultChange,
)

AUD = ComputationRef("aud_1", "vip", "audience", "VIP")
TRA = ComputationRef("tra_1", "ltv", "trait", "LTV")
U1 = Identifier("user_id", "u1")
E1 = Identifier("email", "a@x.io")
E2 = Identifier("email", "b@x.io")


def change(comp: ComputationRef, new: object, version: int = 1, cause: str = "event", old: object = None
           ) -> ResultChange:
    return ResultChange("p1", comp, old, new, version, 1000, cause)


def test_first_sync_sends_every_member_to_every_identifier() -> None:
    plan = plan_event_sync(None, change(AUD, True, cause="backfill"), [U1, E1, E2])
    assert plan.sends == (Send(U1, True, "first_sync"), Send(E1, True, "first_sync"), Send(E2, True, "first_sync"))
    assert plan.snapshot == Snapshot(True, frozenset({U1, E1, E2}), 1)


def test_first_sync_skips_non_members_and_users_without_value() -> None:
    assert plan_event_sync(None, change(AUD, False), [U1]).sends == ()
    assert plan_event_sync(None, change(AUD, None), [U1]).snapshot is None
    assert plan_event_sync(None, change(TRA, None), [U1]).sends == ()
    assert plan_event_sync(None, change(TRA, 0), [U1]).sends == (Send(U1, 0, "first_sync"),)


def test_historical_off_records_a_silent_baseline() -> None:
    plan = plan_event_sync(None, change(AUD, True, cause="backfill"), [U1], historical=False)
    assert plan.sends == ()
    assert plan.snapshot == Snapshot(True, frozenset(), 1, baseline=True)
    # Gaining an email does not leak the pre-connection membership ...
    plan2 = plan_event_sync(plan.snapshot, change(AUD, True, 2, "identifier_added"), [U1, E1], historical=False)
    assert plan2.sends == ()
    # ... but a real change afterwards is sent, and an exit of a baseline member sends nothing.
    exit_plan = plan_event_sync(plan.snapshot, change(AUD, False, 2), [U1], historical=False)
    assert exit_plan.sends == ()
    # A live entry (not the backfill) is sent even with historical off.
    live = plan_event_sync(None, change(AUD, True, cause="event"), [U1], historical=False)
    assert live.sends == (Send(U1, True, "first_sync"),)


def test_trait_sends_only_on_change() -> None:
    snap = Snapshot(450.0, frozenset({U1}), 1)
    assert plan_event_sync(snap, change(TRA, 450.0, 2), [U1]).sends == ()
    plan = plan_event_sync(snap, change(TRA, 500.0, 2), [U1])
    assert plan.sends == (Send(U1, 500.0, "changed"),)
    # JSON equality: 1 and true are different trait values
    assert plan_event_sync(Snapshot(1, frozenset({U1}), 1), change(TRA, True, 2), [U1]).sends == (
        Send(U1, True, "changed"),)


def test_unchanged_value_resyncs_to_new_identifier_only() -> None:
    snap = Snapshot("Shoes", frozenset({Identifier("anonymous_id", "a1")}), 1)
    plan = plan_event_sync(snap, change(TRA, "Shoes", 2, "identifier_added"), [Identifier("anonymous_id", "a1"), E1])
    assert plan.sends == (Send(E1, "Shoes", "new_identifier"),)
    assert plan.snapshot is not None and plan.snapshot.identifiers == {Identifier("anonymous_id", "a1"), E1}


def test_anonymous_only_profile_gaining_email_gets_the_value() -> None:
    first = plan_event_sync(None, change(TRA, "Shoes"), [])  # nothing selectable yet
    assert first.sends == () and first.snapshot == Snapshot("Shoes", frozenset(), 1)
    later = plan_event_sync(first.snapshot, change(TRA, "Shoes", 2, "identifier_added"), [E1])
    assert later.sends == (Send(E1, "Shoes", "new_identifier"),)


def test_merge_resyncs_to_all_current_identifiers() -> None:
    snap = Snapshot(True, frozenset({U1}), 1)
    plan = plan_event_sync(snap, change(AUD, True, 2, "merge"), [U1, E1])
    assert plan.sends == (Send(U1, True, "merge"), Send(E1, True, "merge"))


def test_exit_goes_to_every_identifier_ever_sent() -> None:
    snap = Snapshot(True, frozenset({U1, E1, E2}), 3)
    # ID sync now selects only the user id, and E2 was removed from the profile: the exit ignores both.
    plan = plan_event_sync(snap, change(AUD, False, 4), [U1])
    assert plan.sends == (Send(E1, False, "exit"), Send(E2, False, "exit"), Send(U1, False, "exit"))
    assert plan.snapshot == Snapshot(False, frozenset({U1, E1, E2}), 4)
    # trait cleared: null to everyone that had it
    tplan = plan_event_sync(Snapshot(5, frozenset({U1}), 1), change(TRA, None, 2), [U1, E1])
    assert tplan.sends == (Send(U1, None, "exit"),)


def test_reentry_after_exit() -> None:
    snap = Snapshot(False, frozenset({U1}), 2)
    assert plan_event_sync(snap, change(AUD, True, 3), [U1, E1]).sends == (
        Send(U1, True, "changed"), Send(E1, True, "changed"))


def test_stale_change_sends_nothing() -> None:
    snap = Snapshot(True, frozenset({U1}), 5)
    plan = plan_event_sync(snap, change(AUD, False, 4), [U1])
    assert plan.sends == () and plan.snapshot == snap


def test_confirm_moves_snapshot_forward_per_delivery() -> None:
    s = confirm(None, Send(U1, True, "first_sync"), 1)
    assert s == Snapshot(True, frozenset({U1}), 1)
    s = confirm(s, Send(E1, True, "first_sync"), 1)
    assert s == Snapshot(True, frozenset({U1, E1}), 1)
    s2 = confirm(s, Send(U1, False, "exit"), 2)
    assert s2 == Snapshot(False, frozenset({U1, E1}), 2)
    # a late confirmation of an older version only adds the identifier
    assert confirm(s2, Send(E2, True, "first_sync"), 1) == Snapshot(False, frozenset({U1, E1, E2}), 2)
    assert Snapshot.from_json(s2.to_json()) == s2


@given(st.lists(st.booleans(), min_size=1, max_size=12),
       st.lists(st.sampled_from([U1, E1, E2]), min_size=0, max_size=3, unique=True))
def test_membership_sequence_never_double_sends(seq: list[bool], idents: list[Identifier]) -> None:
    """Folding every plan's sends: the destination's view always equals the latest membership."""
    snap: Snapshot | None = None
    dest_view: dict[Identifier, bool] = {}
    for version, member in enumerate(seq, start=1):
        plan = plan_event_sync(snap, change(AUD, member, version), idents)
        for send in plan.sends:
            assert dest_view.get(send.identifier) != send.value  # never a redundant message
            dest_view[send.identifier] = send.value
        snap = plan.snapshot
    for ident in idents:
        assert dest_view.get(ident, False) == seq[-1]


def test_activate_applies_id_sync_and_connection() -> None:
    conn = ConnectionSettings(send_identify=True, send_track=True, id_sync={"email": "last"})
    target = ActivationTarget("dst_1", "Webhook", "spa_1")
    plan, messages = activate(change(AUD, True, cause="backfill"), None, [U1, E1, E2], target, conn)
    assert [s.identifier for s in plan.sends] == [E2]
    assert [(m["type"], m.get("event"), m["userId"]) for m, _ in messages] == [
        ("identify", None, "u1"), ("track", "Audience Entered", "u1")]
    assert messages[0][0]["traits"] == {"email": "b@x.io", "vip": True}


def test_list_diff_first_upload_then_adds_and_removes() -> None:
    first = plan_list_sync(None, {"p1": [E1], "p2": [E2]})
    assert first.create is True
    assert first.adds == (ListMember("p1", E1), ListMember("p2", E2)) and first.removes == ()
    uploaded = {"p1": frozenset({E1}), "p2": frozenset({E2})}
    e3 = Identifier("email", "c@x.io")
    later = plan_list_sync(uploaded, {"p1": [E1, e3], "p3": [U1]})
    assert later.create is False
    assert later.adds == (ListMember("p1", e3), ListMember("p3", U1))
    assert later.removes == (ListMember("p2", E2),)
    assert plan_list_sync(uploaded, {"p1": [E1], "p2": [E2]}).empty


@pytest.mark.parametrize("members", [{}, {"p1": []}])
def test_list_diff_everyone_left(members: dict[str, list[Identifier]]) -> None:
    d = plan_list_sync({"p1": frozenset({E1, U1})}, members)
    assert d.adds == () and d.removes == (ListMember("p1", E1), ListMember("p1", U1))
