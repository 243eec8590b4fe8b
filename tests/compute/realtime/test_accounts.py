"""Account-level definitions in the realtime engine: a user's event, a link added or ended, a
window closing and a merge of users each update the account, as the reference evaluates it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from tests.compute.realtime.conftest import Harness, S, defs
from traitsync.compute.realtime import current_values
from traitsync.compute.realtime.partitions import Partition
from traitsync.compute.realtime.registry import Registry
from traitsync.identity import IdentityWorker, default_identity_config
from traitsync.privacy.erase import finish
from traitsync.privacy.regulations import Regulation
from traitsync.store.database import Database
from traitsync.store.migrate import migrate

ACCOUNT_DEFS = """
computed_traits:
  - key: orders
    query: event('Order').count()
  - key: acct_orders
    level: account
    query: event('Order').within(10 seconds).count()
  - key: acct_spend
    level: account
    query: event('Order').sum(property('total'))
audiences:
  - key: buyer
    query: event('Order').count() >= 1
  - key: acct_busy
    level: account
    query: event('Order').within(10 seconds).count() >= 2 AND trait('plan') = 'pro'
  - key: acct_any_buyer
    level: account
    query: ANY audience('buyer')
  - key: acct_all_buyers
    level: account
    query: ALL event('Order').count() >= 1
  - key: acct_no_signup
    level: account
    query: NONE(event('Signup').count() >= 1) AND NOT audience('acct_busy')
"""


def _group(h: Harness, user: str, group: str, **traits: Any) -> None:
    h.send({"type": "group", "userId": user, "groupId": group, "traits": traits})


def _acc(h: Harness, group: str) -> str:
    return h.profile_of_id("group_id", group)


def _values(h: Harness, group: str) -> dict[str, Any]:
    return h.actual(_acc(h, group), "account")


def test_user_events_links_and_time_update_the_account(harness_factory: Any) -> None:
    h: Harness = harness_factory(ACCOUNT_DEFS)
    h.identify("u1", plan="free")
    h.identify("u2")
    _group(h, "u1", "g1", plan="pro")
    h.sync()
    h.check()
    assert _values(h, "g1") == {"acct_orders": 0, "acct_spend": None, "acct_busy": False, "acct_any_buyer": False,
                                "acct_all_buyers": False, "acct_no_signup": True}
    h.track("u1", "Order", total=5)
    h.track("u2", "Order", total=7)  # u2 is in no account yet
    h.sync()
    h.check()
    assert _values(h, "g1")["acct_spend"] == 5
    assert _values(h, "g1")["acct_all_buyers"] is True
    _group(h, "u2", "g1")  # u2 joins: its earlier events count too
    h.sync()
    h.check()
    values = _values(h, "g1")
    assert values["acct_spend"] == 12 and values["acct_orders"] == 2 and values["acct_busy"] is True
    assert values["acct_no_signup"] is False  # busy now
    h.tick(11 * S)  # the window closes with no event
    h.check()
    assert _values(h, "g1")["acct_busy"] is False and _values(h, "g1")["acct_orders"] == 0
    h.send({"type": "identify", "userId": "u3"})
    _group(h, "u3", "g1")  # a member that never ordered: not every member is a buyer any more
    h.sync()
    h.check()
    assert _values(h, "g1")["acct_all_buyers"] is False and _values(h, "g1")["acct_any_buyer"] is True
    h.track("u3", "Signup")
    h.sync()
    h.check()
    assert _values(h, "g1")["acct_no_signup"] is False


def test_results_carry_the_account_profile_id(harness_factory: Any) -> None:
    h: Harness = harness_factory(ACCOUNT_DEFS)
    _group(h, "u1", "g1")
    h.track("u1", "Order", total=3)
    h.sync()
    acc = _acc(h, "g1")
    rows = [r for r in h.results() if r[1] == acc]
    assert {r[0] for r in rows} == {"acct_orders", "acct_spend", "acct_any_buyer", "acct_all_buyers",
                                    "acct_no_signup", "acct_busy"} - {"acct_busy"}
    assert all(not k.startswith("__member") for k in current_values(h.db, h.profile_of("u1")))
    assert not any(r[0].startswith("__member") for r in h.results())


def test_a_merge_of_users_keeps_the_account_current(harness_factory: Any) -> None:
    h: Harness = harness_factory(ACCOUNT_DEFS)
    h.send({"type": "track", "anonymousId": "anon", "event": "Order", "properties": {"total": 4}})
    _group(h, "u1", "g1")
    h.sync()
    h.check()
    assert _values(h, "g1")["acct_spend"] is None
    h.send({"type": "identify", "userId": "u1", "anonymousId": "anon"})  # merges the anonymous buyer into u1
    h.sync()
    h.check()
    assert _values(h, "g1")["acct_spend"] == 4


def test_latest_membership_moves_a_user(sqlite_url: str) -> None:
    h = Harness(sqlite_url, defs(ACCOUNT_DEFS))
    try:
        h.identity.close()
        h.identity = IdentityWorker(h.db, replace(default_identity_config(), account_membership="latest"))
        _group(h, "u1", "g1")
        h.track("u1", "Order", total=9)
        h.sync()
        assert _values(h, "g1")["acct_spend"] == 9
        _group(h, "u1", "g2")
        h.sync()
        h.check()
        assert h.members(_acc(h, "g1")) == []
        assert _values(h, "g1")["acct_spend"] is None and _values(h, "g1")["acct_any_buyer"] is False
        assert _values(h, "g2")["acct_spend"] == 9 and _values(h, "g2")["acct_any_buyer"] is True
        _group(h, "u1", "g1")  # and back, in one chunk with a move away again
        _group(h, "u1", "g2")
        _group(h, "u1", "g1")
        h.sync()
        h.check()
        assert h.members(_acc(h, "g2")) == [] and h.members(_acc(h, "g1")) == [h.profile_of("u1")]
    finally:
        h.close()


def test_account_definitions_added_later_are_backfilled(harness_factory: Any) -> None:
    h: Harness = harness_factory("audiences:\n  - key: buyer\n    query: event('Order').count() >= 1\n")
    _group(h, "u1", "g1")
    _group(h, "u2", "g1")
    h.track("u1", "Order", total=2)
    h.sync()
    h.new_engine(defs(ACCOUNT_DEFS))
    h.sync()
    h.check()
    assert _values(h, "g1")["acct_any_buyer"] is True and _values(h, "g1")["acct_all_buyers"] is False
    h.track("u2", "Order", total=1)
    h.sync()
    h.check()
    assert _values(h, "g1")["acct_all_buyers"] is True


def test_an_account_trait_change_alone_updates_the_account(harness_factory: Any) -> None:
    h: Harness = harness_factory(ACCOUNT_DEFS)
    _group(h, "u1", "g1", plan="free")
    h.track("u1", "Order", total=1)
    h.track("u1", "Order", total=1)
    h.sync()
    assert _values(h, "g1")["acct_busy"] is False
    _group(h, "u1", "g1", plan="pro")  # no new link, no event the account reads: only its trait
    h.sync()
    h.check()
    assert _values(h, "g1")["acct_busy"] is True


def test_a_partitioned_engine_marks_account_definitions_failed(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    migrate(db)
    conn = db.connect()
    try:
        compiled, failed = Registry(db, defs(ACCOUNT_DEFS), conn, 0, Partition(0, 2)).sync()
        rows = dict(conn.fetchall("SELECT key, error FROM computations WHERE status = 'Failed'"))
    finally:
        conn.close()
    account_keys = {"acct_orders", "acct_spend", "acct_busy", "acct_any_buyer", "acct_all_buyers", "acct_no_signup"}
    assert failed == account_keys and set(compiled) == {"orders", "buyer"}
    assert rows == dict.fromkeys(account_keys, "account-level definitions need the realtime engine in one "
                                               "partition (engine.partitions is 2)")


def test_a_deleted_user_leaves_its_accounts(harness_factory: Any) -> None:
    h: Harness = harness_factory(ACCOUNT_DEFS)
    _group(h, "u1", "g1")
    _group(h, "u2", "g1")
    h.track("u1", "Order", total=5)
    h.track("u2", "Order", total=7)
    h.sync()
    assert _values(h, "g1")["acct_spend"] == 12
    u2 = h.profile_of("u2")
    conn = h.db.connect()
    with conn.transaction():  # the privacy deletion's last step, as `traitsync privacy` runs it
        finish(conn, Regulation(0, "delete", "user_id", "u2", "test", 0, "exiting", None, None), [u2],
               send_exits=False, now_ms=h.clock.ms)
    conn.close()
    h.sync()
    h.check()
    assert h.members(_acc(h, "g1")) == [h.profile_of("u1")]
    assert _values(h, "g1")["acct_spend"] == 5 and _values(h, "g1")["acct_all_buyers"] is True
