"""Every Query Language example of spec 4.8 (and the Segment reference page) equals its YAML twin."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from traitsync.config.yaml_lines import load_yaml_text
from traitsync.definitions import ir, load_definitions, parse_audience_query, parse_trait_query
from traitsync.definitions.query_language import QueryError
from traitsync.definitions.yaml_form import audience_from_yaml, trait_from_yaml


def _yaml_condition(text: str, level: str = "user") -> ir.Condition:
    entry: dict[str, Any] = {"key": "k", "condition": yaml.safe_load(text), "level": level}
    doc = load_yaml_text(yaml.safe_dump({"audiences": [entry]}))
    return audience_from_yaml(doc, doc.data["audiences"][0], ("audiences", 0)).condition


def _yaml_trait(text: str) -> ir.ComputedTrait:
    entry = {"key": "k", **yaml.safe_load(text)}
    doc = load_yaml_text(yaml.safe_dump({"computed_traits": [entry]}))
    return trait_from_yaml(doc, doc.data["computed_traits"][0], ("computed_traits", 0))


AUDIENCES = [
    ("event('Order Completed').where(property('total') > 50).within(30 days).count() >= 1",
     "performed: {event: Order Completed, where: [{property: total, op: greater_than, value: 50}], "
     "within: 30d, at_least: 1}"),
    ("event('Shoes Bought').where( property('price') >= 100 ).within(7 days).count() >= 1",
     "performed: {event: Shoes Bought, where: [{property: price, op: '>=', value: 100}], within: 7d}"),
    ("event('Shoes Bought').where(\nproperty('price') >= trait('avg_spend')\nAND\n"
     "event('Shoes Returned').within(parent: 5 days).count() >= 1\n).within(30 days).count() >= 1",
     "performed: {event: Shoes Bought, within: 30d, at_least: 1,"
     " where: [{property: price, op: greater_than_or_equal, value: {trait: avg_spend}}],"
     " and_then: {event: Shoes Returned, within: 5d}}"),
    ("NOT ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
     "not: {all: [{performed: {event: Shoes Bought}}, {trait: {key: total_spend, op: '>', value: 200}}]}"),
    ("event('Product Added').where(event('Order Completed').within(parent: 1 days).count() = 0)"
     ".within(7 days).count() >= 1",
     "performed: {event: Product Added, within: 7d, and_then_not: {event: Order Completed, within: 1d}}"),
    ("trait('a') = true || trait('b').exists() && !audience('x')",
     "any: [{trait: {key: a, op: equals, value: true}},"
     " {all: [{trait: {key: b, op: exists}}, {not_in_audience: x}]}]"),
    ("trait('plan').one_of('gold', 'silver') OR trait('email').ends_with('@example.com')",
     "any: [{trait: {key: plan, op: equals one of, value: [gold, silver]}},"
     " {trait: {key: email, op: ends with, value: '@example.com'}}]"),
    ("trait('renewal').within_next(14 days) AND trait('signup').before_last(1 days)",
     "all: [{trait: {key: renewal, op: within_next, value: 14d}}, {trait: {key: signup, op: before last, value: 1d}}]"),
    ("trait('trial_end').after_date('2024-01-31T00:00:00Z') AND trait('name').contains('a', 'b')",
     "all: [{trait: {key: trial_end, op: after_date, value: '2024-01-31T00:00:00Z'}},"
     " {trait: {key: name, op: contains any of, value: [a, b]}}]"),
    ("trait('x').absent() AND trait('y') != 'z' AND trait('w').omits('q')",
     "all: [{trait: {key: x, op: not exists}}, {trait: {key: y, op: differs, value: z}},"
     " {trait: {key: w, op: does not contain, value: q}}]"),
    ("event('Login').between(30 days, 90 days).count() >= 3",
     "performed: {event: Login, between: [30d, 90d], at_least: 3}"),
    ("event('Login').within(2 hours).count() < 2", "performed: {event: Login, within: 2h, at_most: 1}"),
    ("event('Login').count() > 4", "performed: {event: Login, at_least: 5}"),
    ("event('Login').count() <= 0", "performed: {event: Login, at_most: 0}"),
    ("event('Login').count() != 2", "not: {performed: {event: Login, exactly: 2}}"),
    ("event('Page Viewed').where(context('page.url').starts_with('https://shop')).count() >= 1",
     "performed: {event: Page Viewed, where: [{context: page.url, op: starts_with, value: 'https://shop'}]}"),
    ("event('Order Completed').sources(exclude: 'src_a', 'src_b').count() >= 1",
     "performed: {event: Order Completed, exclude_sources: [src_a, src_b]}"),
    ("event('Viewed').where(event('Bought').where(property('sku') = property(parent: 'sku'))"
     ".within(parent: 2 days).count() >= 1).count() >= 1",
     "performed: {event: Viewed, and_then: {event: Bought, within: 2d,"
     " where: [{property: sku, op: equals, value: {parent_property: sku}}]}}"),
    ("(trait('a') = 1 OR trait('b') = 2) AND trait('c') = 3",
     "all: [{any: [{trait: {key: a, op: '=', value: 1}}, {trait: {key: b, op: '=', value: 2}}]},"
     " {trait: {key: c, op: '=', value: 3}}]"),
]

ACCOUNT_AUDIENCES = [
    ("ANY event('Logged In').within(30 days).count() >= 1",
     "any_user: {performed: {event: Logged In, within: 30d}}"),
    ("ALL ( event('Shoes Bought').count() >= 1 AND trait('total_spend') > 200 )",
     "all_users: {all: [{performed: {event: Shoes Bought}}, {trait: {key: total_spend, op: '>', value: 200}}]}"),
    ("ALL NOT event('Shoes Bought').count() >= 1", "no_users: {performed: {event: Shoes Bought}}"),
    ("NONE event('Shoes Bought').count() >= 1", "no_users: {performed: {event: Shoes Bought}}"),
    ("NONE(event('Churned').count() >= 1)", "no_users: {performed: {event: Churned}}"),
    # inside larger conditions, as Segment allows
    ("trait('tier') = 'pro' AND ANY event('Login').count() >= 1 OR NOT ALL trait('plan') = 'free'",
     "any: [{all: [{trait: {key: tier, op: '=', value: pro}}, {any_user: {performed: {event: Login}}}]},"
     " {not: {all_users: {trait: {key: plan, op: '=', value: free}}}}]"),
    ("event('Order').within(7 days).count() >= 3 AND NONE audience('churned')",
     "all: [{performed: {event: Order, within: 7d, at_least: 3}}, {no_users: {in_audience: churned}}]"),
]

TRAITS = [
    ("event('Order Completed').within(180 days).sum(property('revenue'))",
     "{kind: aggregation, function: sum, event: Order Completed, property: revenue, window: 180d}"),
    ("event('Shoes Bought').within(30 days).avg(property('spend'))",
     "{kind: aggregation, function: avg, event: Shoes Bought, property: spend, window: 30d}"),
    ("event('Shoes Bought').where( property('price') > 100 AND property('brand') = 'My Brand' )"
     ".min(property('spend'))",
     "{kind: aggregation, function: min, event: Shoes Bought, property: spend,"
     " where: [{property: price, op: '>', value: 100}, {property: brand, op: equals, value: My Brand}]}"),
    ("event('Shoes Bought').within(30 days).first(property('spend'))",
     "{kind: first, event: Shoes Bought, property: spend, window: 30d}"),
    ("event('Shoes Bought').within(30 days).mode(property('spend'), 2)",
     "{kind: most_frequent, event: Shoes Bought, property: spend, window: 30d}"),
    ("event('Shoes Bought').mode(property('spend') as array, 3)",
     "{kind: most_frequent, event: Shoes Bought, property: spend, min_frequency: 3}"),
    ("event('Page Viewed').last(property('utm_campaign'))",
     "{kind: last, event: Page Viewed, property: utm_campaign}"),
    ("event('Page Viewed').unique(property('category'))",
     "{kind: unique_list, event: Page Viewed, property: category}"),
    ("event('Page Viewed').unique(property('ip')).count()",
     "{kind: unique_list_count, event: Page Viewed, property: ip}"),
    ("event('Logged In').within(90 days).count()", "{kind: event_counter, event: Logged In, window: 90d}"),
    ("event('Shoes Bought').max(property('size') as string)",
     "{kind: aggregation, function: max, event: Shoes Bought, property: size, value_type: string}"),
]


@pytest.mark.parametrize(("query", "twin"), AUDIENCES)
def test_audience_query_equals_yaml_twin(query: str, twin: str) -> None:
    assert parse_audience_query(query) == _yaml_condition(twin)


@pytest.mark.parametrize(("query", "twin"), ACCOUNT_AUDIENCES)
def test_account_query_equals_yaml_twin(query: str, twin: str) -> None:
    assert parse_audience_query(query) == _yaml_condition(twin, level="account")


@pytest.mark.parametrize(("query", "twin"), TRAITS)
def test_trait_query_equals_yaml_twin(query: str, twin: str) -> None:
    assert parse_trait_query(query, "k") == _yaml_trait(twin)


def test_spec_example_ir_exactly() -> None:
    assert parse_audience_query(AUDIENCES[0][0]) == ir.Performed(
        "Order Completed", ir.PropertyCondition("total", "greater_than", 50), "at_least", 1, ir.Within(30 * 86400))


def test_and_binds_tighter_than_or() -> None:
    a, b, c = (ir.TraitCondition(k, "equals", 1) for k in "abc")
    assert parse_audience_query("trait('a') = 1 OR trait('b') = 1 AND trait('c') = 1") == ir.Any((a, ir.All((b, c))))
    assert parse_audience_query("trait('a') = 1 AND trait('b') = 1 OR trait('c') = 1") == ir.Any((ir.All((a, b)), c))


def test_query_in_config_loads_like_yaml() -> None:
    doc = load_yaml_text(
        "audiences:\n"
        "  - key: q\n"
        "    query: \"event('Order Completed').where(property('total') > 50).within(30 days).count() >= 1\"\n"
        "  - key: y\n"
        "    condition:\n"
        "      performed: {event: Order Completed, within: 30d, where: [{property: total, op: '>', value: 50}]}\n")
    defs = load_definitions(doc)
    q, y = defs["q"], defs["y"]
    assert isinstance(q, ir.Audience) and isinstance(y, ir.Audience)
    assert q.condition == y.condition


@pytest.mark.parametrize(("query", "column", "message"), [
    ("event('A').count() >= ", 23,
     "the query ends early; expected '(', 'false', 'true', a function name, a number, a string"),
    ("event('A'.count() >= 1", 10,
     "unexpected '.'; expected '&&', ')', ',', 'AND', 'OR', '||', a comparison (=, !=, >, >=, <, <=)"),
    ("event('A').sum(property('x')) > 3", 12,
     "only count() can be compared in an audience; define a computed trait and compare trait('key') "
     "instead of sum()"),
    ("event('A').within(3 weeks).count() > 1", 21,
     "unexpected 'weeks'; expected '&&', ')', ',', 'AND', 'OR', '||', a comparison (=, !=, >, >=, <, <=), "
     "a time unit (seconds, minutes, hours, days)"),
    ("event('A').where(event('B').count() >= 1).count() >= 1", 18,
     "an event inside where() is a funnel step and needs within(parent: N days)"),
    ("event('A').expires_after(30 days).count() >= 1", 12, "expires_after() (session windows) is not supported"),
    ("trait('x').within_last('7')", 24, "expected a duration such as 30 days"),
    ("trait('x') > 'big'", 14, "greater_than needs a number"),
    ("event('A').count() < 0", 22, "count() cannot be compared with less_than 0"),
    ("property('x') = 1", 1, "property() is only valid inside where() or a reducer"),
    ("ANY (trait('a') = 1 AND ALL trait('b') = 1)", 25, "ALL cannot be used inside another ANY, ALL or NONE"),
    ("event('A').where(NONE property('x') = 1).count() >= 1", 18,
     "NONE is a condition on an account's users, not valid inside where()"),
    ("event('A') @", 12,
     "unexpected character '@'; expected '&&', ')', ',', '.', 'AND', 'OR', 'as', '||', "
     "a comparison (=, !=, >, >=, <, <=)"),
])
def test_query_errors_name_the_column(query: str, column: int, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_audience_query(query)
    assert (info.value.column, info.value.detail) == (column, message)
    assert str(info.value) == f"column {column}: {message}"


@pytest.mark.parametrize(("query", "message"), [
    ("event('A').count() >= 1",
     "column 20: a computed trait query returns a value, so it cannot end in a comparison"),
    ("trait('x')", "column 1: a computed trait query starts with event()"),
    ("trait('x') AND trait('y')",
     "column 1: a computed trait query is event(...) followed by a reducer such as sum(...)"),
    ("event('A').sum(property('x') as string)", "column 12: sum() does not take 'as string'"),
    ("event('A').mode(property('x'), 0)", "column 32: mode() minimum frequency must be a whole number, 1 or more"),
])
def test_trait_query_errors(query: str, message: str) -> None:
    with pytest.raises(QueryError) as info:
        parse_trait_query(query, "k")
    assert str(info.value) == message
