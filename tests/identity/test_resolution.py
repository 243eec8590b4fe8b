"""Flat matching (segment-spec 2.3-2.6) on both backends: the worked examples and the rules."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.identity.conftest import Harness

H = Callable[..., Harness]


def ident(uid: str | None = None, anon: str | None = None, **traits: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "identify", "traits": traits}
    if "timestamp" in traits:
        msg["timestamp"] = traits.pop("timestamp")
    if uid is not None:
        msg["userId"] = uid
    if anon is not None:
        msg["anonymousId"] = anon
    return msg


def track(uid: str | None = None, anon: str | None = None, event: str = "Viewed", **extra: Any) -> dict[str, Any]:
    msg: dict[str, Any] = {"type": "track", "event": event, **extra}
    if uid is not None:
        msg["userId"] = uid
    if anon is not None:
        msg["anonymousId"] = anon
    return msg


def test_create_then_add_then_resolve(harness: H) -> None:
    h = harness()
    h.send(track(anon="a1"), ident("u1", "a1", email="jane@example.com"))
    h.run()
    pid = h.profile_of("anonymous_id", "a1")
    assert pid is not None and pid.startswith("use_")
    assert h.ids_of(pid) == {("anonymous_id", "a1"), ("user_id", "u1"), ("email", "jane@example.com")}
    assert h.event_profile("m00001") == pid == h.event_profile("m00002")


def test_doc_example_abc456_demotes_email_and_creates_new_profile(harness: H) -> None:
    # segment-spec 2.3: limits user_id 1, email 5, anonymous_id 5.
    h = harness({"rules": [{"id_type": "user_id", "limit": 1}, {"id_type": "email", "limit": 5},
                           {"id_type": "anonymous_id", "limit": 5}]})
    h.send(ident("abc123", email="jane@example.com"), ident("abc456", email="jane@example.com"))
    h.run()
    first = h.profile_of("user_id", "abc123")
    second = h.profile_of("user_id", "abc456")
    assert first is not None and second is not None and first != second
    assert h.ids_of(first) == {("user_id", "abc123"), ("email", "jane@example.com")}
    assert h.ids_of(second) == {("user_id", "abc456")}
    assert h.event_profile("m00002") == second
    assert h.violations() == [("Identifier value limit exceeded", "user_id", "abc456")]
    demoted = h.q("SELECT id_type, value, message_id FROM identity_audit WHERE action = 'demoted'")
    assert demoted == [("email", "jane@example.com", "m00002")]


def test_merge_protection_on_shared_anonymous_id(harness: H) -> None:
    # A non-reset anonymous id shared by u1 and u2 must not merge them (user_id limit 1).
    h = harness()
    h.send(ident("u1", "shared"), ident("u2", "shared"), track("u2", "shared"))
    h.run()
    p1, p2 = h.profile_of("user_id", "u1"), h.profile_of("user_id", "u2")
    assert p1 is not None and p2 is not None and p1 != p2
    assert h.profile_of("anonymous_id", "shared") == p1
    assert h.ids_of(p2) == {("user_id", "u2")}
    assert h.event_profile("m00002") == p2
    assert h.event_profile("m00003") == p2
    assert h.q("SELECT COUNT(*) FROM identity_merges") == [(0,)]


def test_blocked_values_default_and_configured(harness: H) -> None:
    h = harness({"blocked_values": ["void", {"regex": "^test-"}],
                 "rules": [{"id_type": "email", "blocked_values": ["team@company.com"]}]})
    h.send(track(anon="0000"), track(anon="-1"), track(anon="null"), track(anon="anonymous"),
           track(anon="undefined"), track(anon="void"), track(anon="test-1"),
           ident("u1", "a1", email="team@company.com"))
    h.run()
    assert h.profile_of("anonymous_id", "0000") is None
    assert h.profile_of("email", "team@company.com") is None
    pid = h.profile_of("user_id", "u1")
    assert pid is not None and h.ids_of(pid) == {("user_id", "u1"), ("anonymous_id", "a1")}
    blocked = [v for v in h.violations() if v[0] == "ID value blocked"]
    assert blocked == [("ID value blocked", "anonymous_id", v) for v in
                       ("0000", "-1", "null", "anonymous", "undefined", "void", "test-1")] + \
        [("ID value blocked", "email", "team@company.com")]
    unresolved = [v for v in h.violations() if v[0] == "No matching identifiers on event"]
    assert len(unresolved) == 7
    assert h.event_profile("m00001") is None
    assert h.q('SELECT COUNT(*) FROM profile_events WHERE profile_id IS NULL') == [(7,)]


def test_suggested_blocked_values_can_be_turned_off(harness: H) -> None:
    h = harness({"suggested_blocked_values": False})
    h.send(track(anon="null"))
    h.run()
    assert h.profile_of("anonymous_id", "null") is not None


def test_oldest_profile_survives_merge(harness: H) -> None:
    h = harness()
    h.send(track(anon="old"), ident("u1"), track("u1", "old"))
    h.run()
    old = h.q("SELECT profile_id FROM profiles WHERE first_message_id = 'm00001'")[0][0]
    young = h.q("SELECT profile_id FROM profiles WHERE first_message_id = 'm00002'")[0][0]
    assert h.profile_of("user_id", "u1") == old
    assert h.ids_of(old) == {("anonymous_id", "old"), ("user_id", "u1")}
    assert h.q("SELECT merged_into, merge_count FROM profiles WHERE profile_id = ?", (young,)) == [(old, 0)]
    assert h.q("SELECT merge_count FROM profiles WHERE profile_id = ?", (old,)) == [(1,)]
    assert h.q("SELECT survivor_id, absorbed_id, message_id FROM identity_merges") == [(old, young, "m00003")]
    changes = h.q("SELECT kind, profile_id, other_profile_id FROM profile_changes WHERE kind = 'merged'")
    assert changes == [("merged", old, young)]


def test_merge_chain_keeps_merged_into_flat(harness: H) -> None:
    h = harness()
    h.send(track(anon="a"), track(anon="b"), track(anon="c"), track(anon="a", userId="u"),
           track(anon="b", userId="u"), track(anon="c", userId="u"))
    h.run()
    pa = h.profile_of("anonymous_id", "a")
    assert {h.profile_of("anonymous_id", x) for x in "bc"} == {pa}
    assert h.q("SELECT COUNT(*) FROM profiles WHERE merged_into = ?", (pa,)) == [(2,)]
    assert h.q("SELECT merge_count FROM profiles WHERE profile_id = ?", (pa,)) == [(2,)]


def test_trait_conflict_on_merge_newest_wins(harness: H) -> None:
    h = harness()
    h.send(ident(anon="a1", plan="free", color="red", timestamp="2024-01-02T00:00:00.000Z"))
    h.send(ident("u1", plan="pro", size="L", timestamp="2024-01-03T00:00:00.000Z"))
    h.send(ident(anon="a1", color="blue", size="S", timestamp="2024-01-04T00:00:00.000Z"))
    h.send(track("u1", "a1", timestamp="2024-01-05T00:00:00.000Z"))
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid == h.profile_of("anonymous_id", "a1")
    assert pid is not None
    assert h.traits(pid) == {"plan": "pro", "color": "blue", "size": "S"}


def test_traits_last_update_wins_null_deletes_empty_string_kept(harness: H) -> None:
    h = harness()
    h.send(ident("u1", name="Jane", age=30, nick="jj"))
    h.send(ident("u1", name="Janet", age=None, nick=""))
    h.send(ident("u1", name="Old", timestamp="2023-01-01T00:00:00.000Z"))  # late, older: ignored
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid is not None
    assert h.traits(pid) == {"name": "Janet", "nick": ""}


def test_only_identify_sets_user_traits(harness: H) -> None:
    h = harness()
    h.send(track("u1", context={"traits": {"email": "ct@example.com", "plan": "x"}}))
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid is not None
    assert h.traits(pid) == {}
    # but identifiers are promoted from context.traits
    assert h.profile_of("email", "ct@example.com") == pid


def test_alias_does_not_merge(harness: H) -> None:
    h = harness()
    h.send(track("u1"), track("u2"), {"type": "alias", "userId": "u2", "previousId": "u1"})
    h.run()
    p1, p2 = h.profile_of("user_id", "u1"), h.profile_of("user_id", "u2")
    assert p1 != p2
    assert h.event_profile("m00003") == p2
    assert h.q("SELECT COUNT(*) FROM identity_merges") == [(0,)]


def test_group_links_user_to_account_and_sets_account_traits(harness: H) -> None:
    h = harness()
    h.send(ident("u1", name="Jane"), {"type": "group", "userId": "u1", "groupId": "g1",
                                      "traits": {"name": "Acme", "plan": "enterprise"}})
    h.run()
    user = h.profile_of("user_id", "u1")
    account = h.profile_of("group_id", "g1", "accounts")
    assert user is not None and account is not None and account.startswith("acc_")
    assert h.traits(user) == {"name": "Jane"}
    assert h.traits(account) == {"name": "Acme", "plan": "enterprise"}
    assert h.q("SELECT user_profile_id, account_profile_id FROM profile_links") == [(user, account)]
    assert h.q("SELECT collection FROM profiles WHERE profile_id = ?", (account,)) == [("accounts",)]
    assert h.q('SELECT profile_id, account_id FROM profile_events WHERE "offset" = 2') == [(user, account)]


def test_links_follow_user_merge(harness: H) -> None:
    h = harness()
    h.send(track(anon="a1"), {"type": "group", "anonymousId": "a2", "groupId": "g1"}, track(anon="a2"),
           track("u1", "a1"), track("u1", "a2"))
    h.run()
    user = h.profile_of("user_id", "u1")
    account = h.profile_of("group_id", "g1", "accounts")
    assert h.q("SELECT user_profile_id, account_profile_id FROM profile_links") == [(user, account)]


def test_limit_applies_on_add(harness: H) -> None:
    h = harness({"rules": [{"id_type": "anonymous_id", "limit": 2}]})
    h.send(track("u1", "a1"), track("u1", "a2"), track("u1", "a3"))
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid is not None
    assert h.ids_of(pid) == {("user_id", "u1"), ("anonymous_id", "a1"), ("anonymous_id", "a2")}
    assert h.event_profile("m00003") == pid
    assert h.profile_of("anonymous_id", "a3") is None
    assert h.violations() == [("Identifier value limit exceeded", "anonymous_id", "a3")]
    assert h.q("SELECT id_type, value FROM identity_audit WHERE action = 'demoted'") == [("anonymous_id", "a3")]


def test_limit_with_period(harness: H) -> None:
    h = harness({"rules": [{"id_type": "anonymous_id", "limit": "2 weekly"}]})
    h.send(track("u1", "a1", timestamp="2024-01-01T00:00:00.000Z"),
           track("u1", "a2", timestamp="2024-01-02T00:00:00.000Z"),
           track("u1", "a3", timestamp="2024-01-05T00:00:00.000Z"),   # 3 within a week: refused
           track("u1", "a4", timestamp="2024-01-08T12:00:00.000Z"))   # a1 has left the week
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid is not None
    assert h.ids_of(pid) == {("user_id", "u1"), ("anonymous_id", "a1"), ("anonymous_id", "a2"),
                             ("anonymous_id", "a4")}
    assert h.violations() == [("Identifier value time limit exceeded", "anonymous_id", "a3")]


def test_period_in_days_and_period_key(harness: H) -> None:
    h = harness({"rules": [{"id_type": "email", "limit": 1, "period": "3 days"}]})
    h.send(ident("u1", email="a@x.com", timestamp="2024-01-01T00:00:00.000Z"),
           ident("u1", email="b@x.com", timestamp="2024-01-03T00:00:00.000Z"),
           ident("u1", email="c@x.com", timestamp="2024-01-04T00:00:01.000Z"))
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid is not None
    assert {v for t, v in h.ids_of(pid) if t == "email"} == {"a@x.com", "c@x.com"}


def test_priority_pin_changes_which_identifier_is_demoted(harness: H) -> None:
    # Pinning anonymous_id above email means the email is demoted instead of the anonymous id.
    h = harness({"rules": [{"id_type": "anonymous_id", "limit": 1, "priority": 2},
                           {"id_type": "email", "priority": 3}]})
    h.send(ident("u1", "a1"), ident("u1", "a2", email="e@x.com"))
    h.run()
    p = h.profile_of("user_id", "u1")
    assert h.profile_of("email", "e@x.com") is None
    assert h.profile_of("anonymous_id", "a2") is None
    assert p is not None and h.event_profile("m00002") == p
    demoted = [r[0] for r in h.q("SELECT id_type FROM identity_audit WHERE action = 'demoted' ORDER BY id")]
    assert demoted == ["email", "anonymous_id"]


def test_default_anonymous_limit_stops_merges_long_before_the_cap(harness: H) -> None:
    h = harness()
    h.send(*[track(anon=f"a{i}") for i in range(102)])
    h.send(*[track("u1", f"a{i}") for i in range(101)])
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid == h.profile_of("anonymous_id", "a0")
    assert pid is not None
    # a0's profile gains u1, then absorbs a1..a4; a5 would be a sixth anonymous_id (limit 5).
    assert h.q("SELECT merge_count FROM profiles WHERE profile_id = ?", (pid,)) == [(4,)]
    assert len(h.violations()) == 96


def test_merge_cap_100_is_enforced(harness: H) -> None:
    h = harness({"rules": [{"id_type": "anonymous_id", "limit": 10000}]})
    h.send(*[track(anon=f"a{i}") for i in range(102)])
    h.send(*[track(f"u{0}", f"a{i}") for i in range(102)])
    h.run()
    pid = h.profile_of("anonymous_id", "a0")
    assert pid is not None
    assert h.q("SELECT merge_count FROM profiles WHERE profile_id = ?", (pid,)) == [(100,)]
    assert h.profile_of("user_id", "u0") == pid
    # the 101st merge is refused; the event still resolves to the profile of its user_id
    assert h.profile_of("anonymous_id", "a101") != pid
    assert h.event_profile("m00204") == pid
    assert h.violations()[-1][0] == "Profile merge limit exceeded"
    assert [v[0] for v in h.violations()] == ["Profile merge limit exceeded"]


def test_mapping_cap_1000_is_enforced(harness: H) -> None:
    h = harness({"rules": [{"id_type": "anonymous_id", "limit": 10000}]})
    h.send(*[track("u1", f"a{i}") for i in range(1000)])
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid is not None
    assert len(h.ids_of(pid)) == 1000
    assert [v[0] for v in h.violations()] == ["Identifier mapping limit exceeded"]
    assert h.profile_of("anonymous_id", "a999") is None
    assert h.event_profile("m01000") == pid


def test_device_and_ga_and_custom_identifiers(harness: H) -> None:
    h = harness({"custom_ids": ["app_id", {"id_type": "member_no", "keys": ["memberNumber"]}]})
    h.send(track("u1", context={"device": {"type": "android", "id": "dev1", "advertisingId": "ad1",
                                           "adTrackingEnabled": True, "token": "tok1"},
                                "integrations": {"Google Analytics": {"clientId": "ga1"}},
                                "externalIds": [{"id": "X9", "type": "Shopify_ID", "collection": "users",
                                                 "encoding": "none"}]},
                 properties={"appId": "app-7", "member_number": "M1"}))
    h.send(track("u2", context={"device": {"type": "ios", "id": "dev2", "advertisingId": "ad2",
                                           "adTrackingEnabled": False}}))
    h.run()
    p1 = h.profile_of("user_id", "u1")
    assert p1 is not None
    assert h.ids_of(p1) == {("user_id", "u1"), ("android.id", "dev1"), ("android.idfa", "ad1"),
                            ("android.push_token", "tok1"), ("ga_client_id", "ga1"), ("shopify_id", "X9"),
                            ("app_id", "app-7"), ("member_no", "M1")}
    p2 = h.profile_of("user_id", "u2")
    assert p2 is not None
    assert h.ids_of(p2) == {("user_id", "u2"), ("ios.id", "dev2")}


def test_unknown_external_id_type_gets_limit_5(harness: H) -> None:
    h = harness()
    h.send(*[track("u1", context={"externalIds": [{"id": f"c{i}", "type": "crm_id", "collection": "users",
                                                   "encoding": "none"}]}) for i in range(6)])
    h.run()
    pid = h.profile_of("user_id", "u1")
    assert pid is not None
    assert len([1 for t, _ in h.ids_of(pid) if t == "crm_id"]) == 5
    assert h.violations() == [("Identifier value limit exceeded", "crm_id", "c5")]


def test_metadata_tracks_first_and_last_message(harness: H) -> None:
    h = harness()
    h.send(track("u1", timestamp="2024-01-01T00:00:00.000Z"))
    h.send(track("u1", timestamp="2024-01-03T00:00:00.000Z"), source="src_app")
    h.run()
    pid = h.profile_of("user_id", "u1")
    rows = h.q("SELECT created_at_ms, updated_at_ms, first_message_id, first_source_id, last_message_id, "
               "last_source_id FROM profiles WHERE profile_id = ?", (pid,))
    assert rows == [(1704067200000, 1704240000000, "m00001", "src_web", "m00002", "src_app")]


def test_profile_ids_are_derived_from_the_creating_message(harness: H) -> None:
    from traitsync.identity import profile_id_for

    h = harness()
    h.send(track("u1"))
    h.run()
    assert h.profile_of("user_id", "u1") == profile_id_for("use_", "m00001")
