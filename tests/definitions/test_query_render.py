"""IR -> Query Language: each text reads back to the same IR, and what has no form is refused."""

from __future__ import annotations

import dataclasses

import pytest

from traitsync.definitions import ir
from traitsync.definitions.query_language import parse_audience_query, parse_trait_query
from traitsync.definitions.query_render import QueryRenderError, render_condition, render_query, render_trait

#: Canonical texts: parsing then rendering gives them back character for character.
AUDIENCES = [
    "event('Order Completed').within(30 days).count() >= 1",
    "event('Order Completed').where(property('total') > 50).within(7 days).count() >= 2",
    "event('Page Viewed').between(2 days, 5 days).count() <= 3",
    "event('Signed Up').count() = 1 AND trait('plan') = 'pro'",
    "(audience('vips') OR trait('country').one_of('FR', 'DE')) AND NOT event('Churned').count() >= 1",
    "trait('email').exists() AND trait('last_seen').within_last(14 days)",
    "event('Clicked').where(property('url').contains('sale') AND context('page.path').starts_with('/s')).count() >= 1",
    "event('Order').where(event('Refund').within(parent: 3 days).count() >= 1).count() >= 1",
    "event('Viewed').sources(exclude: 'src_a', 'src_b').count() >= 1",
    "trait('name') = 'O\\'Brien'",
    "trait('score') >= 2.5 AND trait('active') = true",
    "ANY event('Login').within(1 hour).count() >= 1",
    "trait('tier') = 'pro' AND ANY event('Login').count() >= 1 AND ALL NOT audience('churned')",
    "NOT ALL (trait('plan') = 'free' OR event('Upgrade').count() = 0) OR event('Order').count() >= 5",
]
TRAITS = [
    "event('Order Completed').where(property('currency') = 'USD').within(180 days).sum(property('revenue'))",
    "event('Order Completed').count()",
    "event('Product Viewed').last(property('category'))",
    "event('Product Viewed').mode(property('category'), 3)",
    "event('Product Viewed').unique(property('sku')).count()",
    "event('Product Viewed').unique(property('sku'))",
    "event('Order Completed').max(property('sku') as string)",
]


@pytest.mark.parametrize("text", AUDIENCES)
def test_audience_queries_read_back_exactly(text: str) -> None:
    cond = parse_audience_query(text)
    assert render_condition(cond) == text
    assert parse_audience_query(render_condition(cond)) == cond


@pytest.mark.parametrize("text", TRAITS)
def test_trait_queries_read_back_exactly(text: str) -> None:
    trait = parse_trait_query(text, "k")
    assert render_trait(trait) == text
    assert parse_trait_query(render_query(trait), "k") == trait


def test_a_yaml_trait_renders_to_the_same_meaning() -> None:
    trait = ir.ComputedTrait(key="total", kind="aggregation", event="Order Completed", property="revenue",
                             function="avg", window=ir.Within(90 * 60), name="Total")
    back = parse_trait_query(render_query(trait), "total")
    assert back == dataclasses.replace(trait, name=None)


@pytest.mark.parametrize("cond", [ir.All(()), ir.TraitCondition("vip", "equals", True, computed=True)])
def test_what_has_no_exact_form_is_refused(cond: ir.Condition) -> None:
    with pytest.raises(QueryRenderError):
        render_condition(cond)
