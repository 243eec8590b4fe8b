"""Worked scenarios for the realtime engine: windows and exits, dependencies, merges, late events,
history options, backfill and the status lifecycle."""

from __future__ import annotations

from typing import Any

from tests.compute.realtime.conftest import D, S

WINDOWED = """
computed_traits:
  - key: orders_7d
    query: "event('Order').within(7 days).count()"
  - key: spend
    query: "event('Order').sum(property('total'))"
  - key: order_count
    query: "event('Order').count()"
audiences:
  - key: recent_buyer
    condition: {performed: {event: Order, at_least: 1, within: 7d}}
  - key: big_recent
    condition: {all: [{in_audience: recent_buyer}, {trait: {key: spend, op: greater_than, value: 100}}]}
  - key: vip
    condition: {all: [{in_audience: big_recent}, {trait: {key: plan, op: equals, value: gold}}]}
"""


def test_enter_then_exit_exactly_at_the_window_edge(harness_factory: Any) -> None:
    h = harness_factory(WINDOWED)
    h.track("u1", "Order", total=50)
    h.sync()
    pid = h.profile_of("u1")
    assert h.actual(pid)["recent_buyer"] is True
    assert h.actual(pid)["orders_7d"] == 1
    h.tick(7 * D - 1)
    assert h.actual(pid)["recent_buyer"] is True
    h.tick(1)
    assert h.actual(pid) == h.expected(pid)
    assert h.actual(pid)["recent_buyer"] is False
    rows = [r for r in h.results() if r[0] == "recent_buyer"]
    assert rows == [("recent_buyer", pid, None, "true", 1, rows[0][5]), ("recent_buyer", pid, "true", "false", 2,
                                                                          "timer")]


def test_dependency_order_trait_audience_audience(harness_factory: Any) -> None:
    h = harness_factory(WINDOWED)
    h.identify("u1", plan="gold")
    h.track("u1", "Order", total=60)
    h.sync()
    pid = h.profile_of("u1")
    assert h.actual(pid)["vip"] is False
    h.track("u1", "Order", total=60)
    h.sync()
    assert h.actual(pid) == h.expected(pid)
    assert h.actual(pid)["vip"] is True
    keys = [r[0] for r in h.results() if r[5] == h.results()[-1][5]]
    assert keys.index("spend") < keys.index("big_recent") < keys.index("vip")
    h.identify("u1", plan="silver")
    h.sync()
    assert h.actual(pid)["vip"] is False
    assert h.results()[-1][:5] == ("vip", pid, "true", "false", 4)  # version: offset of the 4th event
    assert h.results()[-1][5] == "trait:plan"
    h.tick(7 * D)
    assert h.actual(pid) == h.expected(pid)
    assert h.actual(pid)["big_recent"] is False


def test_late_event_inserts_in_order(harness_factory: Any) -> None:
    h = harness_factory("""
computed_traits:
  - key: first_sku
    query: "event('Order').first(property('sku'))"
  - key: last_sku
    query: "event('Order').last(property('sku'))"
  - key: skus_3d
    query: "event('Order').within(3 days).unique(property('sku'))"
""")
    h.track("u1", "Order", sku="b")
    h.sync()
    pid = h.profile_of("u1")
    h.track("u1", "Order", t=h.clock.ms - 2 * D, sku="a")   # late, still inside the window
    h.track("u1", "Order", t=h.clock.ms - 9 * D, sku="z")   # late, older than every window
    h.sync()
    assert h.actual(pid) == {"first_sku": "z", "last_sku": "b", "skus_3d": ["a", "b"]}
    assert h.actual(pid) == h.expected(pid)
    h.tick(1 * D)
    assert h.actual(pid)["skus_3d"] == ["b"]
    assert h.actual(pid) == h.expected(pid)


def test_merge_recomputes_the_survivor_and_exits_the_absorbed(harness_factory: Any) -> None:
    h = harness_factory(WINDOWED)
    h.send({"type": "identify", "anonymousId": "a1", "traits": {"email": "a@example.com"}})
    h.send({"type": "track", "anonymousId": "a1", "event": "Order", "properties": {"total": 70}})
    h.send({"type": "track", "userId": "u2", "event": "Order", "properties": {"total": 40}})
    h.sync()
    p1, p2 = h.profile_of_id("email", "a@example.com"), h.profile_of("u2")
    assert h.actual(p1)["recent_buyer"] is True
    assert h.actual(p2)["recent_buyer"] is True
    h.send({"type": "identify", "userId": "u2", "anonymousId": "a1", "traits": {}})
    h.sync()
    survivors = h.profiles()
    assert len(survivors) == 1
    survivor = survivors[0]
    absorbed = p2 if survivor == p1 else p1
    assert h.actual(survivor) == h.expected(survivor)
    assert h.actual(survivor)["spend"] == 110
    merge_rows = [r for r in h.results() if r[1] == absorbed and r[5] == "merge"]
    assert ("recent_buyer", absorbed, "true", "false") in [r[:4] for r in merge_rows]
    assert h.actual(absorbed)["recent_buyer"] is False


def test_historical_off_counts_only_events_after_creation(harness_factory: Any) -> None:
    h = harness_factory("computed_traits: []")
    h.track("u1", "Order", total=5)
    h.sync()
    h.clock.ms += 10 * S
    text = """
computed_traits:
  - key: n_all
    query: "event('Order').count()"
  - key: n_new
    query: "event('Order').count()"
    historical: false
audiences:
  - key: never_ordered_since
    condition: {performed: {event: Order, exactly: 0}}
    historical: false
"""
    from tests.compute.realtime.conftest import defs
    progress: list[tuple[int, int]] = []
    h.engine_kw["progress"] = lambda done, total: progress.append((done, total))
    h.new_engine(defs(text))
    h.sync()
    pid = h.profile_of("u1")
    assert h.actual(pid) == {"n_all": 1, "n_new": 0, "never_ordered_since": True}
    assert progress == [(1, 1)]
    h.track("u1", "Order", total=5)
    h.sync()
    assert h.actual(pid) == {"n_all": 2, "n_new": 1, "never_ordered_since": False}
    assert h.actual(pid) == h.expected(pid)
    status = h.db.thread_connection().fetchall("SELECT key, status, size FROM computations ORDER BY key")
    assert [tuple(r) for r in status] == [("n_all", "Live", 1), ("n_new", "Live", 1),
                                          ("never_ordered_since", "Live", 0)]


def test_both_backends_merge_and_exit(harness_factory: Any, db_url: str) -> None:
    h = harness_factory(WINDOWED, url=db_url)
    h.send({"type": "identify", "anonymousId": "a1", "traits": {"email": "a@example.com", "plan": "gold"}})
    h.send({"type": "track", "anonymousId": "a1", "event": "Order", "properties": {"total": 70}})
    h.send({"type": "track", "userId": "u2", "event": "Order", "properties": {"total": 40}})
    h.send({"type": "identify", "userId": "u2", "anonymousId": "a1", "traits": {}})
    h.sync(batch=2)
    h.check()
    [pid] = h.profiles()
    assert h.actual(pid)["vip"] is True
    h.tick(7 * D)
    h.check()
    assert h.actual(pid)["vip"] is False
