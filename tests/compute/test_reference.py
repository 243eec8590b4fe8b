"""Worked cases for the reference evaluator: every trait kind, every condition, every boundary."""

from __future__ import annotations

from itertools import count
from typing import Any

import pytest

from traitsync.compute.reference import compare, evaluate, next_change_ms
from traitsync.definitions import Definitions, ir
from traitsync.definitions.query_language import parse_audience_query, parse_trait_query
from traitsync.spec.event import StoredEvent

S = 1000
H = 3600 * S
D = 86400 * S
NOW = 1000 * D
_offsets = count(1)


def ev(name: str, t: int, source: str = "src", **props: Any) -> StoredEvent:
    offset = next(_offsets)
    return StoredEvent(offset=offset, message_id=f"m{offset}", source_id=source, type="track", event=name,
                       user_id="u1", anonymous_id=None, timestamp_ms=t, received_at_ms=t,
                       body={"type": "track", "event": name, "properties": props})


def trait(query: str, key: str = "t") -> ir.ComputedTrait:
    return parse_trait_query(query, key)


def audience(query: str, key: str = "a") -> ir.Audience:
    return ir.Audience(key, parse_audience_query(query))


def run(defn: ir.Definition, events: list[StoredEvent], traits: dict[str, Any] | None = None,
        as_of: int = NOW, others: tuple[ir.Definition, ...] = (), **kw: Any) -> Any:
    defs = Definitions((*others, defn))
    return evaluate(defn, events, traits or {}, as_of, definitions=defs, **kw)


ORDERS = [ev("Order", NOW - 40 * D, total=10, sku="b"), ev("Order", NOW - 20 * D, total=30, sku="a"),
          ev("Order", NOW - 5 * D, total=20.5, sku="b"), ev("Order", NOW - 1 * D, sku="c"),
          ev("Order", NOW + 1 * D, total=1000, sku="z"), ev("Refund", NOW - 2 * D, total=7)]

TRAIT_CASES = [
    ("event('Order').count()", ORDERS, 4),
    ("event('Order').within(30 days).count()", ORDERS, 3),
    ("event('Nothing').count()", ORDERS, 0),
    ("event('Order').sum(property('total'))", ORDERS, 60.5),
    ("event('Order').where(property('total') < 20.5).sum(property('total'))", ORDERS, 10),
    ("event('Order').within(30 days).avg(property('total'))", ORDERS, 25.25),
    ("event('Order').min(property('total'))", ORDERS, 10),
    ("event('Order').max(property('total'))", ORDERS, 30),
    ("event('Order').max(property('sku') as string)", ORDERS, "c"),
    ("event('Order').min(property('sku') as string)", ORDERS, "a"),
    ("event('Nothing').sum(property('total'))", ORDERS, None),
    ("event('Order').first(property('sku'))", ORDERS, "b"),
    ("event('Order').last(property('sku'))", ORDERS, "c"),
    ("event('Order').last(property('total'))", ORDERS, 20.5),
    ("event('Order').within(3 days).first(property('total'))", ORDERS, None),
    ("event('Order').mode(property('sku'), 2)", ORDERS, "b"),
    ("event('Order').mode(property('sku'), 3)", ORDERS, None),
    ("event('Order').within(30 days).mode(property('sku'), 1)", ORDERS, "a"),
    ("event('Order').unique(property('sku'))", ORDERS, ["a", "b", "c"]),
    ("event('Order').unique(property('sku')).count()", ORDERS, 3),
    ("event('Nothing').unique(property('sku')).count()", ORDERS, 0),
    ("event('Nothing').unique(property('sku'))", ORDERS, None),
    ("event('Order').sources(exclude: 'web').count()",
     [ev("Order", NOW - D, source="web"), ev("Order", NOW - D, source="app")], 1),
    ("event('Order').between(2 days, 30 days).sum(property('total'))", ORDERS, 50.5),
]


@pytest.mark.parametrize(("query", "events", "expected"), TRAIT_CASES)
def test_trait_kinds(query: str, events: list[StoredEvent], expected: Any) -> None:
    assert run(trait(query), events) == expected


def test_most_frequent_tie_goes_to_alphabetically_first() -> None:
    events = [ev("V", NOW - 3 * D, c="shoes"), ev("V", NOW - 2 * D, c="hats"), ev("V", NOW - 1 * D, c="shoes"),
              ev("V", NOW - 1 * D, c="hats"), ev("V", NOW - 1 * D, c="zebra")]
    assert run(trait("event('V').mode(property('c'), 2)"), events) == "hats"


def test_most_frequent_and_unique_compare_as_text() -> None:
    events = [ev("V", NOW - 3 * D, c=5), ev("V", NOW - 2 * D, c="5"), ev("V", NOW - D, c=True)]
    assert run(trait("event('V').mode(property('c'), 2)"), events) == "5"
    assert run(trait("event('V').unique(property('c'))"), events) == [5, True]


def test_first_and_last_break_timestamp_ties_by_log_offset() -> None:
    events = [ev("V", NOW - D, c="early"), ev("V", NOW - D, c="late")]
    assert run(trait("event('V').first(property('c'))"), list(reversed(events))) == "early"
    assert run(trait("event('V').last(property('c'))"), events) == "late"


def test_sum_of_integers_is_integer_and_booleans_are_not_numbers() -> None:
    events = [ev("V", NOW - D, n=2), ev("V", NOW - D, n=3), ev("V", NOW - D, n=True), ev("V", NOW - D, n="4")]
    value = run(trait("event('V').sum(property('n'))"), events)
    assert value == 5 and isinstance(value, int)


# --- windows at the exact boundary -----------------------------------------------------------


@pytest.mark.parametrize(("t", "expected"), [
    (NOW - 30 * D, False),      # t == as_of - 30d is outside: t > as_of - W
    (NOW - 30 * D + 1, True),
    (NOW, True),                # t == as_of is inside
    (NOW + 1, False),           # the future does not exist yet
])
def test_within_boundary(t: int, expected: bool) -> None:
    assert run(audience("event('A').within(30 days).count() >= 1"), [ev("A", t)]) is expected


@pytest.mark.parametrize(("t", "expected"), [
    (NOW - 90 * D, False),      # as_of - M < t
    (NOW - 90 * D + 1, True),
    (NOW - 30 * D, True),       # t <= as_of - N
    (NOW - 30 * D + 1, False),
])
def test_between_boundary(t: int, expected: bool) -> None:
    assert run(audience("event('A').between(30 days, 90 days).count() >= 1"), [ev("A", t)]) is expected


@pytest.mark.parametrize(("query", "n_events", "expected"), [
    ("event('A').count() >= 2", 2, True), ("event('A').count() >= 2", 1, False),
    ("event('A').count() <= 2", 2, True), ("event('A').count() <= 2", 3, False),
    ("event('A').count() <= 0", 0, True),
    ("event('A').count() = 2", 2, True), ("event('A').count() = 2", 3, False),
    ("event('A').count() != 2", 3, True), ("event('A').count() > 2", 2, False),
    ("event('A').count() < 2", 1, True),
])
def test_count_comparators(query: str, n_events: int, expected: bool) -> None:
    assert run(audience(query), [ev("A", NOW - D) for _ in range(n_events)]) is expected


def test_where_filters_and_parent_references() -> None:
    events = [ev("A", NOW - D, price=120, brand="x"), ev("A", NOW - D, price=80, brand="x")]
    assert run(audience("event('A').where(property('price') > 100 AND property('brand') = 'x')"
                        ".count() = 1"), events) is True
    assert run(audience("event('A').where(property('price') >= trait('avg')).count() = 2"), events,
               {"avg": 80}) is True
    assert run(audience("event('A').where(property('price') >= trait('avg')).count() >= 1"), events) is False


# --- funnels ----------------------------------------------------------------------------------

ABANDONED = "event('Added').where(event('Bought').within(parent: 1 days).count() = 0).within(7 days).count() >= 1"
RETURNED = "event('Bought').where(event('Returned').within(parent: 5 days).count() >= 1).count() >= 1"


@pytest.mark.parametrize(("query", "events", "as_of", "expected"), [
    # parent 2 days ago, no child: the window closed, so "did not" holds
    (ABANDONED, [ev("Added", NOW - 2 * D)], NOW, True),
    # the child window is still open: not abandoned yet
    (ABANDONED, [ev("Added", NOW - 2 * H)], NOW, False),
    # closes exactly at parent + 1 day
    (ABANDONED, [ev("Added", NOW - D)], NOW, True),
    (ABANDONED, [ev("Added", NOW - D + 1)], NOW, False),
    # bought within the day: not abandoned
    (ABANDONED, [ev("Added", NOW - 3 * D), ev("Bought", NOW - 3 * D + H)], NOW, False),
    # bought exactly at the deadline still counts; one ms later does not
    (ABANDONED, [ev("Added", NOW - 3 * D), ev("Bought", NOW - 2 * D)], NOW, False),
    (ABANDONED, [ev("Added", NOW - 3 * D), ev("Bought", NOW - 2 * D + 1)], NOW, True),
    # a child at the same instant as the parent is not "then"
    (ABANDONED, [ev("Added", NOW - 3 * D), ev("Bought", NOW - 3 * D)], NOW, True),
    # every parent instance counts: added, bought, added again (spec 4.1)
    (ABANDONED, [ev("Added", NOW - 5 * D), ev("Bought", NOW - 5 * D + H), ev("Added", NOW - 3 * D)], NOW, True),
    # the parent must itself be within 7 days
    (ABANDONED, [ev("Added", NOW - 8 * D)], NOW, False),
    (RETURNED, [ev("Bought", NOW - 10 * D), ev("Returned", NOW - 9 * D)], NOW, True),
    (RETURNED, [ev("Bought", NOW - 10 * D), ev("Returned", NOW - 4 * D)], NOW, False),
    # "and then did" holds as soon as it happens, even with the window still open
    (RETURNED, [ev("Bought", NOW - H), ev("Returned", NOW - 1)], NOW, True),
    # the child must not be in the future either
    (RETURNED, [ev("Bought", NOW - H), ev("Returned", NOW + 1)], NOW, False),
])
def test_funnels(query: str, events: list[StoredEvent], as_of: int, expected: bool) -> None:
    assert run(audience(query), events, as_of=as_of) is expected


def test_funnel_child_compares_with_parent_property() -> None:
    query = ("event('Viewed').where(event('Bought').where(property('sku') = property(parent: 'sku'))"
             ".within(parent: 2 days).count() >= 1).count() >= 1")
    viewed = ev("Viewed", NOW - 3 * D, sku="a")
    assert run(audience(query), [viewed, ev("Bought", NOW - 2 * D, sku="b")]) is False
    assert run(audience(query), [viewed, ev("Bought", NOW - 2 * D, sku="a")]) is True


# --- trait operators ----------------------------------------------------------------------------


@pytest.mark.parametrize(("op", "actual", "expected", "result"), [
    ("equals", "gold", "gold", True), ("equals", "Gold", "gold", False), ("equals", 1, 1.0, True),
    ("equals", True, 1, False), ("equals", None, "x", False), ("equals", "1", 1, False),
    ("not_equals", "a", "b", True), ("not_equals", None, "b", False), ("not_equals", "b", "b", False),
    ("greater_than", 5, 4, True), ("greater_than", 4, 4, False), ("greater_than_or_equal", 4, 4, True),
    ("less_than", 3, 4, True), ("less_than_or_equal", 4.5, 4, False), ("greater_than", "5", 4, False),
    ("greater_than", True, 0, False),
    ("contains", "blue shoes", ("shoe", "hat"), True), ("contains", "cap", ("shoe", "hat"), False),
    ("contains", ["a", "shoe"], ("shoe",), True), ("contains", None, ("a",), False),
    ("not_contains", "cap", ("shoe",), True), ("not_contains", None, ("shoe",), True),
    ("not_contains", "shoes", ("shoe",), False),
    ("starts_with", "total", "to", True), ("starts_with", 12, "1", False), ("ends_with", "a@x.com", "x.com", True),
    ("exists", 0, None, True), ("exists", None, None, False), ("not_exists", None, None, True),
    ("not_exists", "", None, False),
    ("one_of", "b", ("a", "b"), True), ("one_of", "c", ("a", "b"), False), ("one_of", 2, (1, 2), True),
    ("none_of", "c", ("a", "b"), True), ("none_of", None, ("a",), False), ("none_of", "a", ("a",), False),
    ("before_date", "2024-01-30", "2024-01-31T00:00:00Z", True),
    ("before_date", "2024-01-31T00:00:00Z", "2024-01-31", False),
    ("after_date", "2024-01-31T00:00:01+00:00", "2024-01-31", True), ("after_date", 1706659200000, "2024-01-01", False),
    ("after_date", "not a date", "2024-01-01", False),
])
def test_compare(op: str, actual: Any, expected: Any, result: bool) -> None:
    assert compare(op, actual, expected, NOW) is result


ISO_NOW = "1972-09-27T00:00:00Z"  # == NOW (1000 days after the epoch)


def _iso(ms: int) -> str:
    from datetime import UTC, datetime
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat()


@pytest.mark.parametrize(("op", "moment", "result"), [
    ("within_last", NOW - 7 * D, True), ("within_last", NOW - 7 * D - 1000, False),
    ("within_last", NOW, True), ("within_last", NOW + 1000, False),
    ("within_next", NOW + 7 * D, True), ("within_next", NOW + 7 * D + 1000, False),
    ("within_next", NOW, True), ("within_next", NOW - 1000, False),
    ("before_last", NOW - 7 * D, True), ("before_last", NOW - 7 * D + 1000, False),
    ("after_next", NOW + 7 * D, True), ("after_next", NOW + 7 * D - 1000, False),
])
def test_relative_date_operators_are_inclusive(op: str, moment: int, result: bool) -> None:
    assert _iso(NOW) == "1972-09-27T00:00:00+00:00"
    cond = audience(f"trait('d').{op}(7 days)")
    assert run(cond, [], {"d": _iso(moment)}) is result


def test_trait_paths_and_dependencies() -> None:
    spend = trait("event('Order').sum(property('total'))", key="spend")
    big = audience("trait('spend') > 50", key="big")
    vip = audience("audience('big') AND trait('address.city') = 'Paris' AND trait('a\\.b') = 1", key="vip")
    traits = {"address": {"city": "Paris"}, "a.b": 1, "spend": 0}
    assert run(vip, ORDERS, traits, others=(spend, big)) is True
    assert run(vip, ORDERS[:1], traits, others=(spend, big)) is False
    assert run(audience("NOT audience('big')", key="small"), ORDERS[:1], others=(spend, big)) is True
    computed = ir.Audience("c", ir.TraitCondition("spend", "equals", 60.5, computed=True))
    assert run(computed, ORDERS, others=(spend,)) is True


def test_eligibility_needs_an_identifier() -> None:
    aud = audience("event('A').count() >= 1")
    events = [ev("A", NOW - D)]
    assert run(aud, events, identifiers={"anonymous_id": ["x"]}) is False
    assert run(aud, events, identifiers={"email": ["a@b.c"]}) is True
    anon = ir.Audience("a", aud.condition, options=ir.Options(include_anonymous=True))
    assert run(anon, events, identifiers={"anonymous_id": ["x"]}) is True
    assert run(trait("event('A').count()"), events, identifiers={}) is None


def test_history_options_with_a_creation_time() -> None:
    created = NOW - 10 * D
    old = ev("A", NOW - 20 * D)
    recent = ev("A", NOW - 5 * D)
    counter = trait("event('A').count()")
    assert run(counter, [old, recent], created_at_ms=created) == 1          # default lookback 7d before creation
    assert run(counter, [old, recent]) == 2                                  # without a creation time: everything
    live = ir.ComputedTrait("t", "event_counter", "A", options=ir.Options(historical=False))
    assert run(live, [ev("A", created - 1), ev("A", created)], created_at_ms=created) == 1
    long = ir.ComputedTrait("t", "event_counter", "A", options=ir.Options(lookback_seconds=30 * 86400))
    assert run(long, [old, recent], created_at_ms=created) == 2


def test_account_quantifiers() -> None:
    aud = ir.Audience("acc", parse_audience_query("ANY event('Login').count() >= 1"),
                      options=ir.Options(level="account"))
    none_ = ir.Audience("acc", parse_audience_query("ALL NOT event('Login').count() >= 1"),
                        options=ir.Options(level="account"))
    members = [([ev("Login", NOW - D)], {}), ([], {})]
    assert run(aud, [], members=members) is True
    assert run(none_, [], members=members) is False
    assert run(none_, [], members=[([], {})]) is True
    with pytest.raises(ValueError, match="needs the account's members"):
        run(aud, [])


# --- next change ------------------------------------------------------------------------------


def _next(defn: ir.Definition, events: list[StoredEvent], traits: dict[str, Any] | None = None,
          others: tuple[ir.Definition, ...] = ()) -> int | None:
    return next_change_ms(defn, events, traits or {}, NOW, definitions=Definitions((*others, defn)))


def test_next_change_when_the_oldest_event_leaves_the_window() -> None:
    aud = audience("event('A').within(30 days).count() >= 2")
    events = [ev("A", NOW - 20 * D), ev("A", NOW - 10 * D), ev("A", NOW - 5 * D)]
    assert _next(aud, events) == NOW + 20 * D        # the 2nd most recent leaves at t + 30d
    assert _next(aud, events[:1]) is None             # false now, and nothing can make it true


def test_next_change_for_at_most_between_and_future_events() -> None:
    at_most = audience("event('A').within(30 days).count() <= 1")
    assert _next(at_most, [ev("A", NOW - 20 * D), ev("A", NOW - 10 * D)]) == NOW + 10 * D
    between = audience("event('A').between(2 days, 5 days).count() >= 1")
    assert _next(between, [ev("A", NOW - D)]) == NOW + D          # enters at t + 2d
    assert _next(between, [ev("A", NOW - 3 * D)]) == NOW + 2 * D  # leaves at t + 5d
    assert _next(audience("event('A').count() >= 1"), [ev("A", NOW + 5)]) == NOW + 5


def test_next_change_for_funnels_traits_and_dates() -> None:
    assert _next(audience(ABANDONED), [ev("Added", NOW - 2 * H)]) == NOW - 2 * H + D
    total = trait("event('Order').within(30 days).sum(property('total'))")
    assert _next(total, ORDERS) == NOW + D            # the future order becomes visible first
    assert _next(total, ORDERS[:4]) == NOW + 10 * D   # then the order of NOW - 20d leaves
    renewal = audience("trait('renews').within_next(7 days)")
    assert _next(renewal, [], {"renews": _iso(NOW + 10 * D)}) == NOW + 3 * D
    assert _next(renewal, [], {"renews": _iso(NOW + 2 * D)}) == NOW + 2 * D + 1
    spend = trait("event('Order').within(30 days).sum(property('total'))", key="spend")
    big = audience("trait('spend') > 40", key="big")
    assert _next(big, ORDERS[:4], others=(spend,)) == NOW + 10 * D
