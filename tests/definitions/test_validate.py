"""Every definition error names file, line and key path, with an exact message."""

from __future__ import annotations

import pytest

from traitsync.config.yaml_lines import load_yaml_text
from traitsync.definitions import ir, load_definitions
from traitsync.errors import ConfigError

GOOD_TRAIT = """\
computed_traits:
  - key: total_revenue
    kind: aggregation
    event: Order Completed
    property: revenue
    function: sum
"""


def _error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_definitions(load_yaml_text(text, "traitsync.yaml"))
    return info.value


CASES = [
    # unknown keys, at every level
    ("audiences:\n  - key: a\n    colour: red\n    condition: {in_audience: a}\n",
     "traitsync.yaml:3 [audiences[0].colour]: unknown key 'colour' (expected one of: key, name, description, "
     "condition, query, historical, lookback, include_anonymous, level)"),
    ("audiences:\n  - key: a\n    condition:\n      performed: {event: X, whithin: 3d}\n",
     "traitsync.yaml:4 [audiences[0].condition.performed.whithin]: unknown key 'whithin' (expected one of: "
     "event, where, at_least, at_most, exactly, within, between, exclude_sources, and_then, and_then_not)"),
    ("audiences:\n  - key: a\n    condition: {sometimes: 1}\n",
     "traitsync.yaml:3 [audiences[0].condition.sometimes]: unknown key 'sometimes' (expected one of: all, any, "
     "not, performed, trait, computed_trait, in_audience, not_in_audience, any_user, all_users, no_users)"),
    # windows
    ("audiences:\n  - key: a\n    condition:\n      performed: {event: X, within: 30x}\n",
     "traitsync.yaml:4 [audiences[0].condition.performed.within]: bad window '30x': use a whole number "
     "followed by s, m, h or d (for example 30d)"),
    ("audiences:\n  - key: a\n    condition:\n      performed:\n        event: X\n        between: [30d, 7d]\n",
     "traitsync.yaml:6 [audiences[0].condition.performed.between]: between [N, M] needs N shorter than M"),
    ("audiences:\n  - key: a\n    condition:\n      performed: {event: X, within: 0d}\n",
     "traitsync.yaml:4 [audiences[0].condition.performed.within]: bad window '0d': use a whole number "
     "followed by s, m, h or d (for example 30d)"),
    (GOOD_TRAIT + "    window: 180\n",
     "traitsync.yaml:7 [computed_traits[0].window]: bad window 180: use a whole number followed by s, m, h or d "
     "(for example 30d)"),
    # operators against values
    ("audiences:\n  - key: a\n    condition:\n      trait: {key: age, op: greater_than, value: old}\n",
     "traitsync.yaml:4 [audiences[0].condition.trait.value]: greater_than needs a number"),
    ("audiences:\n  - key: a\n    condition:\n      trait: {key: age, op: exists, value: 3}\n",
     "traitsync.yaml:4 [audiences[0].condition.trait.value]: exists takes no value"),
    ("audiences:\n  - key: a\n    condition:\n      trait: {key: age, op: bigger}\n",
     "traitsync.yaml:4 [audiences[0].condition.trait.op]: unknown operator 'bigger'"),
    ("audiences:\n  - key: a\n    condition:\n      trait: {key: d, op: before_date, value: yesterday}\n",
     "traitsync.yaml:4 [audiences[0].condition.trait.value]: before_date needs an ISO 8601 date or timestamp "
     "such as 2024-01-31 or 2024-01-31T12:00:00Z"),
    ("audiences:\n  - key: a\n    condition:\n      trait: {key: d, op: within_last, value: 7}\n",
     "traitsync.yaml:4 [audiences[0].condition.trait.value]: bad window 7: use a whole number followed by "
     "s, m, h or d (for example 30d)"),
    ("audiences:\n  - key: a\n    condition:\n      trait: {key: d, op: equals}\n",
     "traitsync.yaml:4 [audiences[0].condition.trait]: equals needs a value (use exists / not_exists to test "
     "for a missing value)"),
    # keys
    ("audiences:\n  - key: Big Spenders\n    condition: {trait: {key: x, op: exists}}\n",
     "traitsync.yaml:2 [audiences[0].key]: bad key 'Big Spenders': keys are snake_case (lowercase letters, "
     "digits and _, starting with a letter)"),
    (GOOD_TRAIT + "audiences:\n  - key: total_revenue\n    condition: {trait: {key: x, op: exists}}\n",
     "traitsync.yaml:8 [audiences[0].key]: duplicate key 'total_revenue' (already used by computed_traits[0])"),
    # references
    ("audiences:\n  - key: a\n    condition:\n      all:\n        - trait: {key: x, op: exists}\n"
     "        - in_audience: nobody\n",
     "traitsync.yaml:6 [audiences[0].condition.all[1].in_audience]: unknown audience 'nobody' "
     "(no audience has this key)"),
    (GOOD_TRAIT + "audiences:\n  - key: a\n    condition: {in_audience: total_revenue}\n",
     "traitsync.yaml:9 [audiences[0].condition.in_audience]: 'total_revenue' is a computed trait, not an "
     "audience; use a trait condition"),
    ("audiences:\n  - key: a\n    condition: {computed_trait: {key: ltv, op: exists}}\n",
     "traitsync.yaml:3 [audiences[0].condition.computed_trait]: unknown computed trait 'ltv' "
     "(no computed trait has this key)"),
    ("audiences:\n  - key: a\n    query: \"trait('x') = 1 AND audience('ghost')\"\n",
     "traitsync.yaml:3 [audiences[0].query]: query: column 20: unknown audience 'ghost' (no audience has this key)"),
    # cycles
    ("audiences:\n  - key: a\n    condition: {in_audience: b}\n  - key: b\n    condition: {not_in_audience: a}\n",
     "traitsync.yaml:3 [audiences[0].condition]: The audience would create a cycle by referencing another "
     "audience"),
    ("audiences:\n  - key: a\n    condition: {in_audience: a}\n",
     "traitsync.yaml:3 [audiences[0].condition]: The audience would create a cycle by referencing another "
     "audience"),
    ("audiences:\n  - key: a\n    query: \"trait('b') = true\"\n  - key: b\n    query: \"audience('a')\"\n",
     "traitsync.yaml:3 [audiences[0].query]: The audience would create a cycle by referencing another audience"),
    # queries
    ("audiences:\n  - key: a\n    query: \"event('A').within(30 dayz).count() >= 1\"\n",
     "traitsync.yaml:3 [audiences[0].query]: query: column 22: unexpected 'dayz'; expected '&&', ')', ',', "
     "'AND', 'OR', '||', a comparison (=, !=, >, >=, <, <=), a time unit (seconds, minutes, hours, days)"),
    ("computed_traits:\n  - key: t\n    query: \"event('A').count()\"\n    event: A\n",
     "traitsync.yaml:4 [computed_traits[0].event]: event cannot be combined with query"),
    # shapes and options
    ("audiences:\n  - key: a\n",
     "traitsync.yaml:2 [audiences[0]]: an audience needs exactly one of condition or query"),
    ("audiences: {a: 1}\n", "traitsync.yaml:1 [audiences]: audiences must be a list"),
    ("computed_traits:\n  - key: t\n    kind: event_counter\n",
     "traitsync.yaml:2 [computed_traits[0]]: required key 'event' is missing"),
    ("computed_traits:\n  - key: t\n    kind: median\n    event: A\n",
     "traitsync.yaml:3 [computed_traits[0].kind]: unknown kind 'median' (expected one of: event_counter, "
     "aggregation, most_frequent, first, last, unique_list, unique_list_count)"),
    ("computed_traits:\n  - key: t\n    kind: last\n    event: A\n    property: p\n    min_frequency: 3\n",
     "traitsync.yaml:6 [computed_traits[0].min_frequency]: min_frequency is only for kind most_frequent"),
    ("audiences:\n  - key: a\n    historical: false\n    lookback: 30d\n    condition: {trait: {key: x, op: exists}}\n",
     "traitsync.yaml:4 [audiences[0].lookback]: lookback needs historical: true"),
    ("audiences:\n  - key: a\n    query: \"ANY trait('x') = 1\"\n",
     "traitsync.yaml:3 [audiences[0].query]: ANY / ALL / NONE (any_user, all_users, no_users) need level: account"),
    ("audiences:\n  - key: a\n    condition: {performed: {event: A}}\n  - key: b\n    level: account\n"
     "    query: \"audience('a')\"\n",
     "traitsync.yaml:6 [audiences[1].query]: query: column 1: 'a' is user-level; an account-level definition "
     "reads it inside ANY / ALL / NONE (for the account's users)"),
    ("audiences:\n  - key: b\n    level: account\n    query: \"trait('tier') = 'pro'\"\n"
     "  - key: a\n    query: \"audience('b')\"\n",
     "traitsync.yaml:6 [audiences[1].query]: query: column 1: 'b' is account-level; a user-level definition "
     "cannot read it"),
    ("audiences:\n  - key: b\n    level: account\n    query: \"trait('tier') = 'pro'\"\n"
     "  - key: c\n    level: account\n    query: \"ANY audience('b')\"\n",
     "traitsync.yaml:7 [audiences[1].query]: query: column 5: 'b' is account-level; inside ANY / ALL / NONE only "
     "user-level keys can be read"),
    ("audiences:\n  - key: a\n    condition:\n      performed:\n        event: A\n"
     "        and_then_not: {event: B, within: 1d, at_least: 2}\n",
     "traitsync.yaml:6 [audiences[0].condition.performed.and_then_not.at_least]: unknown key 'at_least' "
     "(expected one of: event, where, within, exclude_sources, and_then, and_then_not)"),
    ("audiences:\n  - key: a\n    condition:\n      performed: {event: A, at_least: 1, exactly: 2}\n",
     "traitsync.yaml:4 [audiences[0].condition.performed.exactly]: give only one of at_least, at_most, exactly"),
]


@pytest.mark.parametrize(("text", "message"), CASES)
def test_error_message(text: str, message: str) -> None:
    assert str(_error(text)) == message


def test_cycle_error_detail_is_the_spec_sentence() -> None:
    err = _error("audiences:\n  - key: a\n    condition: {in_audience: b}\n"
                 "  - key: b\n    condition: {in_audience: a}\n")
    assert err.detail == "The audience would create a cycle by referencing another audience"
    assert (err.file, err.line, err.key) == ("traitsync.yaml", 3, "audiences[0].condition")


def test_trait_cycle_has_its_own_sentence() -> None:
    err = _error("computed_traits:\n  - key: t\n    kind: event_counter\n    event: A\n"
                 "    where: [{property: p, op: '>', value: {trait: t}}]\n")
    assert str(err) == ("traitsync.yaml:5 [computed_traits[0].where]: The computed trait would create a cycle "
                        "by referencing another computation")


def test_load_orders_dependencies_first_and_looks_up_by_key() -> None:
    defs = load_definitions(load_yaml_text(
        "audiences:\n"
        "  - key: vip_active\n    condition: {all: [{in_audience: vip}, {in_audience: active}]}\n"
        "  - key: vip\n    condition: {trait: {key: ltv, op: '>', value: 100}}\n"
        "  - key: active\n    condition: {performed: {event: Login, within: 7d}}\n"
        "computed_traits:\n"
        "  - key: ltv\n    kind: aggregation\n    event: Order Completed\n    property: total\n    function: sum\n"))
    assert defs.order == ("ltv", "vip", "active", "vip_active")
    assert list(defs) == ["ltv", "vip", "active", "vip_active"]
    assert [d.key for d in defs.computed_traits] == ["ltv"]
    assert [d.key for d in defs.audiences] == ["vip_active", "vip", "active"]
    assert defs.dependencies("vip_active") == {"vip", "active"}
    assert defs.dependencies("vip") == {"ltv"}
    assert defs.consumers("vip") == {"vip_active"}
    assert defs.reading_event("Order Completed") == ("ltv", "vip", "vip_active")
    assert defs.reading_event("Login") == ("active", "vip_active")
    assert defs["vip"].id == "aud_" + __import__("hashlib").sha256(b"vip").hexdigest()[:16]
    assert defs["ltv"].id.startswith("tra_") and len(defs["ltv"].id) == 20


def test_empty_document_has_no_definitions() -> None:
    assert len(load_definitions(load_yaml_text("space_id: x\n"))) == 0


def test_ir_node_reads() -> None:
    cond = ir.All((
        ir.Performed("Viewed", ir.All((
            ir.PropertyCondition("price", "greater_than", ir.TraitRef("avg_spend")),
            ir.Performed("Bought", None, "exactly", 0, ir.ParentWithin(3600)))), window=ir.Within(60)),
        ir.TraitCondition("plan", "equals", "gold"),
        ir.Not(ir.InAudience("churned")),
    ))
    assert cond.events_read() == {"Viewed", "Bought"}
    assert cond.traits_read() == {"avg_spend", "plan"}
    assert cond.depends_on() == {"avg_spend", "plan", "churned"}
    trait = ir.ComputedTrait("t", "event_counter", "A", window=ir.Within(60))
    assert (trait.events_read(), trait.traits_read(), trait.depends_on()) == ({"A"}, frozenset(), frozenset())
    assert ir.effective_lookback_seconds(trait) == 60
    assert ir.effective_lookback_seconds(ir.Audience("a", ir.InAudience("b"))) == 7 * 86400
