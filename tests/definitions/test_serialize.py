"""YAML -> IR -> dict -> IR is stable, and the dict form is the documented, readable one."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from traitsync.config.yaml_lines import load_yaml_text
from traitsync.definitions import definitions_json_schema, ir, ir_from_dict, ir_to_dict, load_definitions
from traitsync.definitions.yaml_form import AUDIENCE_KEYS, CONDITION_KINDS, PERFORMED_KEYS, TRAIT_KEYS

_names = st.sampled_from(["Order Completed", "Page Viewed", "Login", "Product Added"])
_props = st.sampled_from(["total", "sku", "plan", "created_at"])
_windows = st.sampled_from(["10s", "15m", "2h", "30d", "7d"])
_filters = st.one_of(
    st.builds(lambda p, v: {"property": p, "op": "greater_than", "value": v}, _props, st.integers(-5, 500)),
    st.builds(lambda p, v: {"property": p, "op": "equals one of", "value": v}, _props,
              st.lists(st.text("abc", min_size=1, max_size=3), min_size=1, max_size=3)),
    st.builds(lambda p: {"property": p, "op": "exists"}, _props),
    st.builds(lambda p, w: {"context": p, "op": "within_last", "value": w}, _props, _windows),
    st.builds(lambda p, q: {"property": p, "op": "equals", "value": {"parent_property": q}}, _props, _props),
)


def _performed(event: str, where: list[dict[str, Any]], count: tuple[str, int], window: str | None,
               then: dict[str, Any] | None) -> dict[str, Any]:
    body: dict[str, Any] = {"event": event, count[0]: count[1]}
    if where:
        body["where"] = where
    if window:
        body["within"] = window
    if then:
        body["and_then_not"] = then
    return {"performed": body}


_leaf = st.one_of(
    st.builds(_performed, _names, st.lists(_filters, max_size=2),
              st.tuples(st.sampled_from(["at_least", "at_most", "exactly"]), st.integers(0, 5)),
              st.none() | _windows,
              st.none() | st.builds(lambda e, w: {"event": e, "within": w}, _names, _windows)),
    st.builds(lambda k, v: {"trait": {"key": k, "op": ">=", "value": v}}, _props, st.floats(-1e6, 1e6)),
    st.builds(lambda k: {"trait": {"key": k, "op": "not exists"}}, _props),
    st.builds(lambda a, b: {"performed": {"event": a, "between": [b, "90d"]}}, _names, st.sampled_from(["1d", "30d"])),
)
_conditions = st.recursive(_leaf, lambda inner: st.one_of(
    st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda x: {"not": x}, inner)), max_leaves=6)
_traits = st.builds(
    lambda kind, where, window: {
        "key": "t", "kind": kind, "event": "Order Completed",
        **({"property": "total"} if kind != "event_counter" else {}),
        **({"function": "max", "value_type": "string"} if kind == "aggregation" else {}),
        **({"where": where} if where else {}), **({"window": window} if window else {})},
    st.sampled_from(["event_counter", "aggregation", "most_frequent", "first", "last", "unique_list",
                     "unique_list_count"]),
    st.lists(_filters, max_size=3), st.none() | _windows)


@settings(max_examples=150, deadline=None)
@given(condition=_conditions, trait=_traits, historical=st.booleans(), lookback=st.none() | _windows)
def test_yaml_ir_dict_round_trip(condition: dict[str, Any], trait: dict[str, Any], historical: bool,
                                 lookback: str | None) -> None:
    audience: dict[str, Any] = {"key": "a", "name": "A", "condition": condition, "historical": historical}
    if lookback and historical:
        audience["lookback"] = lookback
    text = yaml.safe_dump({"computed_traits": [trait], "audiences": [audience]})
    defs = load_definitions(load_yaml_text(text))
    for key in defs:
        as_dict = ir_to_dict(defs[key])
        assert json.loads(json.dumps(as_dict)) == as_dict
        again = ir_from_dict(as_dict)
        assert again == defs[key]
        assert ir_to_dict(again) == as_dict


def test_ir_dict_is_readable() -> None:
    defs = load_definitions(load_yaml_text(
        "audiences:\n  - key: abandoned\n    condition:\n      performed:\n        event: Product Added\n"
        "        within: 7d\n        and_then_not: {event: Order Completed, within: 1d}\n"))
    assert ir_to_dict(defs["abandoned"]) == {
        "class": "audience", "key": "abandoned", "id": ir.computation_id("aud", "abandoned"),
        "condition": {"performed": {"event": "Product Added", "at_least": 1, "within": "7d", "where": {
            "performed": {"event": "Order Completed", "exactly": 0, "within_parent": "1d"}}}},
        "options": {"historical": True, "include_anonymous": False, "level": "user"},
    }


def test_schema_keys_match_the_loader() -> None:
    schema = definitions_json_schema()
    defs = schema["$defs"]
    assert set(defs["computed_trait"]["properties"]) == set(TRAIT_KEYS)
    assert set(defs["audience"]["properties"]) == set(AUDIENCE_KEYS)
    assert set(defs["performed"]["properties"]) == set(PERFORMED_KEYS)
    assert {next(iter(alt["properties"])) for alt in defs["condition"]["anyOf"]} == set(CONDITION_KINDS)
    assert defs["computed_trait"]["additionalProperties"] is False
    assert json.loads(json.dumps(schema)) == schema
