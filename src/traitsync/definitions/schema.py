"""JSON Schema (draft 2020-12) of the YAML form, for editors and ``traitsync schema``.

Written by hand from the same key tuples ``yaml_form`` enforces, so the schema cannot accept a
key the loader rejects; a test checks that each tuple and the schema agree.
"""

from __future__ import annotations

from typing import Any as AnyType

from traitsync.definitions.journey_form import (
    BRANCH_KEYS,
    EXIT_KEYS,
    JOURNEY_KEYS,
    MAX_RANDOM_BRANCHES,
    RANDOM_KEYS,
    SPLIT_KEYS,
    STEP_KEYS,
)
from traitsync.definitions.operators import ALIASES, OPERATORS
from traitsync.definitions.yaml_form import CONDITION_KINDS, FUNCTIONS, TRAIT_KINDS

_DURATION = {"type": "string", "pattern": "^[1-9][0-9]*[smhd]$", "examples": ["30d", "12h", "15m", "10s"]}
_SCALAR = {"type": ["string", "number", "boolean"]}
_SPAN = {"type": "string", "pattern": "^[1-9][0-9]*[smhdw]$", "examples": ["5s", "1d", "2w"]}
_KEY = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/$defs/{name}"}


def _one(key: str, schema: dict[str, AnyType]) -> dict[str, AnyType]:
    return {"type": "object", "properties": {key: schema}, "required": [key], "additionalProperties": False}


def _closed(properties: dict[str, AnyType], required: list[str] | None = None) -> dict[str, AnyType]:
    out: dict[str, AnyType] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        out["required"] = required
    return out


def definitions_json_schema() -> dict[str, AnyType]:
    """The schema of ``computed_traits:`` and ``audiences:`` (other top-level keys are open)."""
    options = {
        "historical": {"type": "boolean", "default": True},
        "lookback": _DURATION,
        "include_anonymous": {"type": "boolean", "default": False},
        "level": {"enum": ["user", "account"], "default": "user"},
    }
    count = {"type": "integer", "minimum": 0}
    comparators = {"at_least": count, "at_most": count, "exactly": count}
    step_body = {"event": {"type": "string"}, "where": _ref("where"), "within": _DURATION,
                 "exclude_sources": {"type": "array", "items": {"type": "string"}},
                 "and_then": _ref("step"), "and_then_not": _ref("step_not")}
    value = {"anyOf": [_SCALAR, {"type": "array", "items": _SCALAR}, _one("property", {"type": "string"}),
                       _one("parent_property", {"type": "string"}), _one("trait", {"type": "string"})]}
    operator = {"enum": sorted(OPERATORS | set(ALIASES))}
    trait_cond = _closed({"key": {"type": "string"}, "op": operator, "value": value}, ["key", "op"])
    conditions: dict[str, dict[str, AnyType]] = {
        "all": {"type": "array", "items": _ref("condition"), "minItems": 1},
        "any": {"type": "array", "items": _ref("condition"), "minItems": 1},
        "not": _ref("condition"),
        "performed": _ref("performed"),
        "trait": trait_cond,
        "computed_trait": trait_cond,
        "in_audience": {"type": "string"},
        "not_in_audience": {"type": "string"},
        "any_user": _ref("condition"),
        "all_users": _ref("condition"),
        "no_users": _ref("condition"),
    }
    assert set(conditions) == set(CONDITION_KINDS)
    filter_schema = {"anyOf": [
        _closed({"property": {"type": "string"}, "op": operator, "value": value}, ["property", "op"]),
        _closed({"context": {"type": "string"}, "op": operator, "value": value}, ["context", "op"]),
        _one("all", {"type": "array", "items": _ref("filter"), "minItems": 1}),
        _one("any", {"type": "array", "items": _ref("filter"), "minItems": 1}),
        _one("not", _ref("filter")),
        _one("trait", trait_cond),
    ]}
    trait = _closed({
        "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}, "name": {"type": "string"},
        "description": {"type": "string"}, "query": {"type": "string"},
        "kind": {"enum": list(TRAIT_KINDS)}, "event": {"type": "string"}, "property": {"type": "string"},
        "function": {"enum": list(FUNCTIONS)}, "window": _DURATION, "where": _ref("where"),
        "min_frequency": {"type": "integer", "minimum": 1, "default": 2},
        "value_type": {"enum": ["number", "string"], "default": "number"},
        "exclude_sources": {"type": "array", "items": {"type": "string"}}, **options,
    }, ["key"])
    audience = _closed({
        "key": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}, "name": {"type": "string"},
        "description": {"type": "string"}, "query": {"type": "string"}, "condition": _ref("condition"),
        **options,
    }, ["key"])
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "traitsync computed traits, audiences and journeys",
        "type": "object",
        "properties": {"computed_traits": {"type": "array", "items": _ref("computed_trait")},
                       "audiences": {"type": "array", "items": _ref("audience")},
                       "journeys": {"type": "array", "items": _ref("journey")}},
        "$defs": {
            "computed_trait": trait,
            "audience": audience,
            **_journey_defs(options),
            "condition": {"anyOf": [_one(k, v) for k, v in conditions.items()]},
            "performed": _closed({**step_body, **comparators, "between": {
                "type": "array", "items": _DURATION, "minItems": 2, "maxItems": 2}}, ["event"]),
            "step": _closed({**step_body, **comparators}, ["event", "within"]),
            "step_not": _closed(step_body, ["event", "within"]),
            "where": {"type": "array", "items": _ref("filter")},
            "filter": filter_schema,
        },
    }


def _journey_defs(options: dict[str, AnyType]) -> dict[str, AnyType]:
    """``journeys:`` (see ``journey_form``): entry, exit, and steps that are conditions, sends or splits."""
    text = {"type": "string"}
    when = {"condition": _ref("condition"), "query": text}
    journey = _closed({
        "key": _KEY, "name": text, "description": text,
        "entry": {"anyOf": [_ref("condition"), _one("query", text)]},
        **{k: v for k, v in options.items() if k != "level"},
        "exit": _closed({"after": _SPAN, "reenter_after": _SPAN}, ["after"]),
        "steps": {"type": "array", "items": _ref("journey_step")},
    }, ["key", "entry"])
    step = _closed({
        "key": _KEY, "name": text, "description": text,
        "after": {"anyOf": [text, {"type": "array", "items": text, "minItems": 1}], "default": "entry"},
        "wait": _SPAN, **when, "split": _ref("journey_split"),
        "send": {"type": "array", "items": text, "minItems": 1},
    }, ["key"])
    branch = _closed({"key": _KEY, "name": text, **when}, ["key"])
    random = _closed({"key": _KEY, "name": text, "weight": {"type": "integer", "minimum": 1, "maximum": 100}},
                     ["key", "weight"])
    split = {"anyOf": [
        _closed({**when, "if_true": _KEY, "if_false": _KEY}, ["if_true", "if_false"]),
        _closed({"branches": {"type": "array", "items": branch, "minItems": 2}}, ["branches"]),
        _closed({"random": {"type": "array", "items": random, "minItems": 2, "maxItems": MAX_RANDOM_BRANCHES}},
                ["random"]),
    ]}
    assert set(journey["properties"]) == set(JOURNEY_KEYS) and set(step["properties"]) == set(STEP_KEYS)
    assert set(branch["properties"]) == set(BRANCH_KEYS) and set(random["properties"]) == set(RANDOM_KEYS)
    assert set(journey["properties"]["exit"]["properties"]) == set(EXIT_KEYS)
    assert {k for s in split["anyOf"] for k in s["properties"]} == set(SPLIT_KEYS)
    return {"journey": journey, "journey_step": step, "journey_split": split}
