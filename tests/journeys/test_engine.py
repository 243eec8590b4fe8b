"""Journey steps in the realtime engine, on a fake clock: branches, waits, forward only, exit, re-entry."""

from __future__ import annotations

from typing import Any

from tests.compute.realtime.conftest import D, S
from traitsync.compute.realtime.journey_steps import random_bucket
from traitsync.definitions.journey_model import step_computation_key

SPLIT = """
journeys:
  - key: onboarding
    name: Onboarding
    entry: {performed: {event: Signed Up}}
    steps:
      - key: check
        wait: 5s
        split:
          condition: {performed: {event: Order Completed}}
          if_true: bought
          if_false: not_bought
      - key: thanks
        after: bought
      - key: nudge
        after: not_bought
      - key: opened
        after: nudge
        condition: {performed: {event: Email Opened}}
"""

ENTRY = step_computation_key("onboarding", "entry")
BOUGHT = step_computation_key("onboarding", "bought")
NOT_BOUGHT = step_computation_key("onboarding", "not_bought")
THANKS = step_computation_key("onboarding", "thanks")
NUDGE = step_computation_key("onboarding", "nudge")
OPENED = step_computation_key("onboarding", "opened")


def steps_of(h: Any, user: str, keys: tuple[str, ...]) -> set[str]:
    values = h.actual(h.profile_of(user))
    return {k for k in keys if values.get(k)}


def test_step_keys_have_the_segment_form() -> None:
    assert ENTRY.startswith("j_o_onboarding__entry_") and len(ENTRY) == len("j_o_onboarding__entry_") + 6
    assert step_computation_key("onboarding", "entry") == ENTRY  # stable, derived from the keys
    assert len({ENTRY, BOUGHT, NOT_BOUGHT, THANKS, NUDGE, OPENED}) == 6


def test_entry_wait_split_send(harness_factory: Any) -> None:
    h = harness_factory(SPLIT)
    keys = (ENTRY, BOUGHT, NOT_BOUGHT, THANKS, NUDGE, OPENED)
    h.track("buyer", "Signed Up")
    h.track("browser", "Signed Up")
    h.sync()
    assert steps_of(h, "buyer", keys) == {ENTRY}
    h.tick(2 * S)
    h.track("buyer", "Order Completed")  # before the wait ends: decided when it ends
    h.sync()
    assert steps_of(h, "buyer", keys) == {ENTRY}
    h.tick(3 * S - 1)
    assert steps_of(h, "browser", keys) == {ENTRY}  # 1 ms before the wait ends
    h.tick(1)  # exactly 5 s after joining the entry: the due-time index fires
    assert steps_of(h, "buyer", keys) == {ENTRY, BOUGHT, THANKS}
    assert steps_of(h, "browser", keys) == {ENTRY, NOT_BOUGHT, NUDGE}
    # Forward only: the false branch stays and the true branch is never joined.
    h.tick(1 * S)
    h.track("browser", "Order Completed")
    h.sync()
    h.tick(1 * D)
    assert steps_of(h, "browser", keys) == {ENTRY, NOT_BOUGHT, NUDGE}
    h.track("browser", "Email Opened")
    h.sync()
    assert steps_of(h, "browser", keys) == {ENTRY, NOT_BOUGHT, NUDGE, OPENED}
    rows = h.results()
    assert all(r[3] == "true" for r in rows)  # nobody ever left a step: no exit settings
    joined = {(r[0], r[1]): r for r in rows}
    assert joined[(BOUGHT, h.profile_of("buyer"))][5] == "timer"
    # Every step joined once per user.
    assert len(joined) == len(rows) == 3 + 4


def test_condition_step_waits_for_its_condition_after_the_wait(harness_factory: Any) -> None:
    h = harness_factory("""
journeys:
  - key: j
    entry: {performed: {event: A}}
    steps:
      - key: b
        wait: 1h
        condition: {performed: {event: B}}
""")
    b = step_computation_key("j", "b")
    h.track("u", "A")
    h.sync()
    h.tick(10 * 60 * S)
    h.track("u", "B")
    h.sync()
    assert not h.actual(h.profile_of("u"))[b]  # condition holds, wait not elapsed
    h.tick(50 * 60 * S)
    assert h.actual(h.profile_of("u"))[b] is True


EXIT = """
journeys:
  - key: trial
    entry: {performed: {event: Trial Started}}
    exit: {after: 2d, reenter_after: 1w}
    steps:
      - key: welcome
      - key: ab
        after: welcome
        split:
          random:
            - {key: group_a, weight: 30}
            - {key: group_b, weight: 70}
"""


def test_exit_after_n_then_reenter_after_n(harness_factory: Any) -> None:
    h = harness_factory(EXIT)
    entry, welcome = step_computation_key("trial", "entry"), step_computation_key("trial", "welcome")
    a, b = step_computation_key("trial", "group_a"), step_computation_key("trial", "group_b")
    keys = (entry, welcome, a, b)
    users = [f"u{i}" for i in range(20)]
    for u in users:
        h.track(u, "Trial Started")
    h.sync()
    first = {u: steps_of(h, u, keys) for u in users}
    assert all(f in ({entry, welcome, a}, {entry, welcome, b}) for f in first.values())
    assert {a, b} <= set().union(*first.values())  # both branches taken by someone
    h.tick(2 * D - 1)
    assert {u: steps_of(h, u, keys) for u in users} == first
    h.tick(1)  # exit: every step left at once
    assert all(steps_of(h, u, keys) == set() for u in users)
    exits = [r for r in h.results() if r[3] == "false"]
    assert len(exits) == 3 * len(users) and all(r[5] == "timer" for r in exits)
    h.track("u0", "Trial Started")  # too early to re-enter
    h.sync()
    h.tick(7 * D - 1)
    assert all(steps_of(h, u, keys) == set() for u in users)
    h.tick(1)  # one week after the exit: the entry condition still holds, so users are back
    assert {u: steps_of(h, u, keys) for u in users} == first  # each in the branch they took before
    pid = h.profile_of("u0")
    assert [r[3] for r in h.results() if r[0] == entry and r[1] == pid] == ["true", "false", "true"]


def test_no_reentry_without_reenter_after(harness_factory: Any) -> None:
    h = harness_factory("""
journeys:
  - key: once
    entry: {performed: {event: X}}
    exit: {after: 1h}
""")
    entry = step_computation_key("once", "entry")
    h.track("u", "X")
    h.sync()
    h.tick(3600 * S)
    h.track("u", "X")
    h.sync()
    h.tick(30 * D)
    assert [r[3] for r in h.results() if r[0] == entry] == ["true", "false"]


def test_random_split_weights_over_10000_users(harness_factory: Any) -> None:
    """30/70 over 10,000 users through the engine: within 4 standard deviations (±183 users)."""
    h = harness_factory(EXIT)
    a, b = step_computation_key("trial", "group_a"), step_computation_key("trial", "group_b")
    n = 10_000
    for start in range(0, n, 1000):
        h.send(*({"type": "track", "userId": f"user-{i}", "event": "Trial Started"}
                 for i in range(start, start + 1000)))
        h.sync(2000)
    conn = h.db.thread_connection()
    sizes = dict(conn.fetchall("SELECT key, size FROM computations WHERE key IN (?, ?)", (a, b)))
    conn.commit()
    assert sizes[a] + sizes[b] == n
    sd = (n * 0.3 * 0.7) ** 0.5
    assert abs(sizes[a] - 0.3 * n) < 4 * sd, sizes
    # The branch is the hash's: the same users would land there again on re-entry.
    rows = conn.fetchall("SELECT profile_id, computation_key FROM computed_values WHERE computation_key IN (?, ?) "
                         "AND value = 'true'", (a, b))
    conn.commit()
    assert all((random_bucket("trial", str(pid)) < 30) == (key == a) for pid, key in rows)
