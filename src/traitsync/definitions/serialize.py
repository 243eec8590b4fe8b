"""IR <-> plain JSON-able dicts, for ``traitsync validate --show-ir`` and stored snapshots.

The dict form reads like the YAML form (``{"performed": {...}}``, windows as ``"30d"``) so a
user can compare what they wrote with what traitsync understood; ``ir_from_dict`` inverts it
exactly, which the round-trip property test holds to.
"""

from __future__ import annotations

from typing import Any as AnyType
from typing import cast

from traitsync.definitions import ir
from traitsync.definitions.durations import format_duration, parse_duration
from traitsync.definitions.operators import RELATIVE_DATE


def _window_to_dict(window: ir.Window) -> dict[str, AnyType]:
    if isinstance(window, ir.Within):
        return {"within": format_duration(window.seconds)}
    if isinstance(window, ir.Between):
        return {"between": [format_duration(window.start_seconds), format_duration(window.end_seconds)]}
    return {"within_parent": format_duration(window.seconds)}


def _window_from_dict(data: dict[str, AnyType]) -> ir.Window:
    if "within" in data:
        return ir.Within(_seconds(data["within"]))
    if "between" in data:
        start, end = data["between"]
        return ir.Between(_seconds(start), _seconds(end))
    return ir.ParentWithin(_seconds(data["within_parent"]))


def _seconds(text: object) -> int:
    seconds = parse_duration(text)
    if seconds is None:
        raise ValueError(f"bad duration {text!r}")
    return seconds


def _value_to_json(op: str, value: ir.Value) -> AnyType:
    if isinstance(value, ir.TraitRef):
        return {"trait": value.key}
    if isinstance(value, ir.PropertyRef):
        return {"parent_property" if value.parent else "property": value.name}
    if isinstance(value, tuple):
        return list(value)
    if op in RELATIVE_DATE and isinstance(value, int):
        return format_duration(value)
    return value


def _value_from_json(op: str, data: AnyType) -> ir.Value:
    if isinstance(data, dict):
        ((kind, name),) = data.items()
        if kind == "trait":
            return ir.TraitRef(name)
        return ir.PropertyRef(name, parent=kind == "parent_property")
    if isinstance(data, list):
        return tuple(data)
    if op in RELATIVE_DATE:
        return _seconds(data)
    return cast(ir.Value, data)


def condition_to_dict(cond: ir.Condition) -> dict[str, AnyType]:
    if isinstance(cond, ir.All):
        return {"all": [condition_to_dict(c) for c in cond.conditions]}
    if isinstance(cond, ir.Any):
        return {"any": [condition_to_dict(c) for c in cond.conditions]}
    if isinstance(cond, ir.Not):
        return {"not": condition_to_dict(cond.condition)}
    if isinstance(cond, ir.InAudience):
        return {"in_audience": cond.key}
    if isinstance(cond, ir.Quantified):
        return {"quantified": {"quantifier": cond.quantifier, "condition": condition_to_dict(cond.condition)}}
    if isinstance(cond, ir.PropertyCondition):
        out: dict[str, AnyType] = {"name": cond.property, "op": cond.op}
        if cond.value is not None:
            out["value"] = _value_to_json(cond.op, cond.value)
        if cond.scope != "properties":
            out["scope"] = cond.scope
        return {"property": out}
    if isinstance(cond, ir.TraitCondition):
        trait: dict[str, AnyType] = {"key": cond.key, "op": cond.op}
        if cond.value is not None:
            trait["value"] = _value_to_json(cond.op, cond.value)
        return {"computed_trait" if cond.computed else "trait": trait}
    performed: dict[str, AnyType] = {"event": cond.event, cond.comparator: cond.n}
    if cond.window is not None:
        performed.update(_window_to_dict(cond.window))
    if cond.where is not None:
        performed["where"] = condition_to_dict(cond.where)
    if cond.exclude_sources:
        performed["exclude_sources"] = list(cond.exclude_sources)
    return {"performed": performed}


def condition_from_dict(data: dict[str, AnyType]) -> ir.Condition:
    ((kind, body),) = data.items()
    if kind == "all":
        return ir.All(tuple(condition_from_dict(c) for c in body))
    if kind == "any":
        return ir.Any(tuple(condition_from_dict(c) for c in body))
    if kind == "not":
        return ir.Not(condition_from_dict(body))
    if kind == "in_audience":
        return ir.InAudience(body)
    if kind == "quantified":
        return ir.Quantified(body["quantifier"], condition_from_dict(body["condition"]))
    if kind == "property":
        return ir.PropertyCondition(body["name"], body["op"], _value_from_json(body["op"], body.get("value")),
                                    scope=body.get("scope", "properties"))
    if kind in ("trait", "computed_trait"):
        return ir.TraitCondition(body["key"], body["op"], _value_from_json(body["op"], body.get("value")),
                                 computed=kind == "computed_trait")
    comparators: tuple[ir.Comparator, ...] = ("at_least", "at_most", "exactly")
    comparator = next(c for c in comparators if c in body)
    window = None
    if any(k in body for k in ("within", "between", "within_parent")):
        window = _window_from_dict(body)
    where = condition_from_dict(body["where"]) if "where" in body else None
    return ir.Performed(body["event"], where, comparator, body[comparator], window,
                        tuple(body.get("exclude_sources", ())))


def _options_to_dict(options: ir.Options) -> dict[str, AnyType]:
    out: dict[str, AnyType] = {"historical": options.historical,
                               "include_anonymous": options.include_anonymous, "level": options.level}
    if options.lookback_seconds is not None:
        out["lookback"] = format_duration(options.lookback_seconds)
    return out


def _options_from_dict(data: dict[str, AnyType]) -> ir.Options:
    lookback = data.get("lookback")
    return ir.Options(historical=data["historical"], include_anonymous=data["include_anonymous"],
                      level=data["level"],
                      lookback_seconds=_seconds(lookback) if lookback is not None else None)


def ir_to_dict(defn: ir.Definition) -> dict[str, AnyType]:
    """A stable, readable dict of one definition (keys in a fixed order, defaults spelled out)."""
    out: dict[str, AnyType] = {"class": defn.computation_class, "key": defn.key, "id": defn.id}
    if defn.name is not None:
        out["name"] = defn.name
    if isinstance(defn, ir.Audience):
        out["condition"] = condition_to_dict(defn.condition)
    else:
        out["kind"] = defn.kind
        out["event"] = defn.event
        if defn.property is not None:
            out["property"] = defn.property
        if defn.function is not None:
            out["function"] = defn.function
        if defn.kind == "aggregation" and defn.function in ("min", "max"):
            out["value_type"] = defn.value_type
        if defn.kind == "most_frequent":
            out["min_frequency"] = defn.min_frequency
        if defn.window is not None:
            out["window"] = _window_to_dict(defn.window)
        if defn.where is not None:
            out["where"] = condition_to_dict(defn.where)
        if defn.exclude_sources:
            out["exclude_sources"] = list(defn.exclude_sources)
    out["options"] = _options_to_dict(defn.options)
    if isinstance(defn, ir.JourneyStep):
        out["journey"] = _rule_to_dict(defn.rule)
    return out


def _rule_to_dict(rule: ir.StepRule) -> dict[str, AnyType]:
    out: dict[str, AnyType] = {"journey": rule.journey, "step": rule.step, "parents": list(rule.parents)}
    if rule.wait_seconds:
        out["wait"] = format_duration(rule.wait_seconds)
    if rule.exit_after_seconds is not None:
        out["exit_after"] = format_duration(rule.exit_after_seconds)
    if rule.reenter_after_seconds is not None:
        out["reenter_after"] = format_duration(rule.reenter_after_seconds)
    if rule.sibling is not None:
        out["exclusive_with"] = rule.sibling
    if rule.bucket is not None:
        out["bucket"] = [*rule.bucket, rule.of]
    return out


def _rule_from_dict(data: dict[str, AnyType]) -> ir.StepRule:
    def seconds(key: str) -> int | None:
        return _seconds(data[key]) if key in data else None

    bucket = data.get("bucket")
    return ir.StepRule(journey=data["journey"], step=data["step"], parents=tuple(data["parents"]),
                       wait_seconds=seconds("wait") or 0, exit_after_seconds=seconds("exit_after"),
                       reenter_after_seconds=seconds("reenter_after"), sibling=data.get("exclusive_with"),
                       bucket=(bucket[0], bucket[1]) if bucket else None, of=bucket[2] if bucket else 100)


def ir_from_dict(data: dict[str, AnyType]) -> ir.Definition:
    """Inverse of :func:`ir_to_dict` (the ``id`` is recomputed from the key, not read)."""
    options = _options_from_dict(data["options"])
    if data["class"] == "audience" and "journey" in data:
        return ir.JourneyStep(key=data["key"], condition=condition_from_dict(data["condition"]),
                              name=data.get("name"), options=options, rule=_rule_from_dict(data["journey"]))
    if data["class"] == "audience":
        return ir.Audience(key=data["key"], condition=condition_from_dict(data["condition"]),
                           name=data.get("name"), options=options)
    return ir.ComputedTrait(
        key=data["key"], kind=data["kind"], event=data["event"], property=data.get("property"),
        function=data.get("function"), where=condition_from_dict(data["where"]) if "where" in data else None,
        window=_window_from_dict(data["window"]) if "window" in data else None,
        min_frequency=data.get("min_frequency", 2), value_type=data.get("value_type", "number"),
        exclude_sources=tuple(data.get("exclude_sources", ())), name=data.get("name"), options=options)
