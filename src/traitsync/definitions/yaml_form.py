"""The YAML form of computed traits and audiences (DESIGN 4.1) -> IR.

Hand-written rather than pydantic because conditions are a recursive one-key-per-mapping
grammar, and every error has to name the exact key path (``audiences[2].condition.performed
.within``) that the user typed; unknown keys are always errors, so a typo never silently
widens an audience.

Funnels ("and then did" / "and then did not", spec 4.1) are written inside ``performed``::

    performed:
      event: Product Added
      within: 7d
      and_then_not: {event: Order Completed, within: 1d}   # within is relative to each parent

``and_then`` takes ``at_least | at_most | exactly`` (default ``at_least: 1``); ``and_then_not``
means ``exactly: 0``; each step takes ``where``, ``exclude_sources`` and may nest further steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any as AnyType
from typing import cast

from traitsync.config.yaml_lines import KeyPath, LocatedDocument
from traitsync.definitions import ir
from traitsync.definitions.durations import parse_duration
from traitsync.definitions.operators import (
    RELATIVE_DATE,
    TUPLE_VALUED,
    normalise_operator,
    operator_value_error,
)
from traitsync.definitions.query_language import QueryError, parse_audience_query, parse_trait_query

TRAIT_KINDS = ("event_counter", "aggregation", "most_frequent", "first", "last", "unique_list",
               "unique_list_count")
FUNCTIONS = ("sum", "avg", "min", "max")
_OPTION_KEYS = ("historical", "lookback", "include_anonymous", "level")
TRAIT_KEYS = ("key", "name", "description", "kind", "event", "property", "function", "window", "where",
              "min_frequency", "value_type", "exclude_sources", "query", *_OPTION_KEYS)
AUDIENCE_KEYS = ("key", "name", "description", "condition", "query", *_OPTION_KEYS)
CONDITION_KINDS = ("all", "any", "not", "performed", "trait", "computed_trait", "in_audience",
                   "not_in_audience", "any_user", "all_users", "no_users")
PERFORMED_KEYS = ("event", "where", "at_least", "at_most", "exactly", "within", "between",
                  "exclude_sources", "and_then", "and_then_not")
STEP_KEYS = ("event", "where", "at_least", "at_most", "exactly", "within", "exclude_sources", "and_then",
             "and_then_not")
FILTER_KINDS = ("property", "context", "all", "any", "not", "trait")


class _Reader:
    """Walks one entry with its key path, turning every mistake into a located ConfigError."""

    def __init__(self, doc: LocatedDocument) -> None:
        self.doc = doc

    def fail(self, path: KeyPath, message: str) -> Exception:
        return self.doc.error(path, message)

    def mapping(self, value: object, path: KeyPath, allowed: tuple[str, ...],
                what: str) -> dict[str, AnyType]:
        if not isinstance(value, dict):
            raise self.fail(path, f"{what} must be a mapping")
        for key in value:
            if key not in allowed:
                raise self.fail((*path, key), f"unknown key {key!r} (expected one of: {', '.join(allowed)})")
        return cast(dict[str, AnyType], value)

    def one_key(self, value: object, path: KeyPath, allowed: tuple[str, ...],
                what: str) -> tuple[str, AnyType]:
        item = self.mapping(value, path, allowed, what)
        if len(item) != 1:
            raise self.fail(path, f"{what} must have exactly one key, one of: {', '.join(allowed)}")
        ((key, inner),) = item.items()
        return key, inner

    def string(self, value: object, path: KeyPath, what: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.fail(path, f"{what} must be a non-empty string")
        return value

    def required(self, item: Mapping[str, AnyType], key: str, path: KeyPath) -> AnyType:
        if key not in item:
            raise self.fail(path, f"required key {key!r} is missing")
        return item[key]

    def count(self, value: object, path: KeyPath) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise self.fail(path, "must be a whole number, 0 or more")
        return value

    def duration(self, value: object, path: KeyPath) -> int:
        seconds = parse_duration(value)
        if seconds is None:
            raise self.fail(path, f"bad window {value!r}: use a whole number followed by s, m, h or d "
                                  "(for example 30d)")
        return seconds

    def boolean(self, value: object, path: KeyPath) -> bool:
        if not isinstance(value, bool):
            raise self.fail(path, "must be true or false")
        return value

    def sources(self, value: object, path: KeyPath) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.fail(path, "must be a list of source ids")
        return tuple(value)

    # --- options --------------------------------------------------------------------------

    def name(self, entry: Mapping[str, AnyType], path: KeyPath) -> str | None:
        if "name" not in entry:
            return None
        return self.string(entry["name"], (*path, "name"), "name")

    def options(self, entry: Mapping[str, AnyType], path: KeyPath) -> ir.Options:
        historical = (self.boolean(entry["historical"], (*path, "historical"))
                      if "historical" in entry else True)
        lookback = self.duration(entry["lookback"], (*path, "lookback")) if "lookback" in entry else None
        anonymous = (self.boolean(entry["include_anonymous"], (*path, "include_anonymous"))
                     if "include_anonymous" in entry else False)
        level = entry.get("level", "user")
        if level not in ("user", "account"):
            raise self.fail((*path, "level"), "level must be user or account")
        return ir.Options(historical=historical, lookback_seconds=lookback, include_anonymous=anonymous,
                          level=level)

    # --- values and filters ---------------------------------------------------------------

    def value(self, op: str, item: Mapping[str, AnyType], path: KeyPath) -> ir.Value:
        """The normalised comparison value: tuple for list operators, seconds for durations."""
        if "value" not in item:
            raw: object = None
        else:
            raw = item["value"]
            if raw is None:
                raise self.fail((*path, "value"), f"{op} needs a value (use exists / not_exists to test "
                                                  "for a missing value)")
        vpath = (*path, "value")
        result: ir.Value
        is_ref = False
        if isinstance(raw, dict):
            kind, inner = self.one_key(raw, vpath, ("property", "parent_property", "trait"), "a reference")
            name = self.string(inner, (*vpath, kind), kind)
            result = ir.TraitRef(name) if kind == "trait" else ir.PropertyRef(name, parent=kind != "property")
            is_ref = True
        elif op in TUPLE_VALUED and raw is not None:
            result = cast(ir.Value, tuple(raw) if isinstance(raw, list) else (raw,))
        elif op in RELATIVE_DATE and raw is not None:
            result = self.duration(raw, vpath)
        elif isinstance(raw, list):
            raise self.fail(vpath, f"{op} takes a single value, not a list")
        else:
            result = cast(ir.Value, raw)
        problem = operator_value_error(op, result, is_reference=is_ref)
        if problem is not None:
            raise self.fail(vpath if "value" in item else path, problem)
        return result

    def operator(self, item: Mapping[str, AnyType], path: KeyPath) -> str:
        raw = self.required(item, "op", path)
        op = normalise_operator(raw)
        if op is None:
            raise self.fail((*path, "op"), f"unknown operator {raw!r}")
        return op

    def filters(self, value: object, path: KeyPath) -> ir.Condition | None:
        """``where:`` — a list of filters that must all hold (one filter is kept bare)."""
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.fail(path, "where must be a list of filters")
        return _joined([self.filter(item, (*path, i)) for i, item in enumerate(value)])

    def filter(self, value: object, path: KeyPath) -> ir.Condition:
        if isinstance(value, dict) and ("property" in value or "context" in value):
            scope = "property" if "property" in value else "context"
            item = self.mapping(value, path, (scope, "op", "value"), "a filter")
            name = self.string(item[scope], (*path, scope), scope)
            op = self.operator(item, path)
            return ir.PropertyCondition(name, op, self.value(op, item, path),
                                        scope="properties" if scope == "property" else "context")
        kind, inner = self.one_key(value, path, FILTER_KINDS, "a filter")
        if kind in ("all", "any"):
            if not isinstance(inner, list) or not inner:
                raise self.fail((*path, kind), f"{kind} must be a non-empty list of filters")
            parts = tuple(self.filter(v, (*path, kind, i)) for i, v in enumerate(inner))
            return ir.All(parts) if kind == "all" else ir.Any(parts)
        if kind == "not":
            return ir.Not(self.filter(inner, (*path, "not")))
        return self.trait(inner, (*path, kind), computed=False)

    def trait(self, value: object, path: KeyPath, *, computed: bool) -> ir.TraitCondition:
        item = self.mapping(value, path, ("key", "op", "value"), "a trait condition")
        key = self.string(self.required(item, "key", path), (*path, "key"), "key")
        op = self.operator(item, path)
        return ir.TraitCondition(key, op, self.value(op, item, path), computed=computed)

    # --- events ---------------------------------------------------------------------------

    def comparator(self, item: Mapping[str, AnyType], path: KeyPath) -> tuple[ir.Comparator, int]:
        given = [k for k in ("at_least", "at_most", "exactly") if k in item]
        if len(given) > 1:
            raise self.fail((*path, given[1]), "give only one of at_least, at_most, exactly")
        if not given:
            return "at_least", 1
        name = cast(ir.Comparator, given[0])
        return name, self.count(item[name], (*path, name))

    def performed(self, value: object, path: KeyPath) -> ir.Performed:
        item = self.mapping(value, path, PERFORMED_KEYS, "performed")
        event = self.string(self.required(item, "event", path), (*path, "event"), "event")
        comparator, n = self.comparator(item, path)
        window: ir.Window | None = None
        if "within" in item and "between" in item:
            raise self.fail((*path, "between"), "give either within or between, not both")
        if "within" in item:
            window = ir.Within(self.duration(item["within"], (*path, "within")))
        elif "between" in item:
            window = self.between(item["between"], (*path, "between"))
        return ir.Performed(event, self.where_with_steps(item, path), comparator, n, window,
                            self.sources(item["exclude_sources"], (*path, "exclude_sources"))
                            if "exclude_sources" in item else ())

    def between(self, value: object, path: KeyPath) -> ir.Between:
        if not isinstance(value, list) or len(value) != 2:
            raise self.fail(path, "between must be a list of two windows, [N, M] meaning N to M ago")
        start = self.duration(value[0], (*path, 0))
        end = self.duration(value[1], (*path, 1))
        if start >= end:
            raise self.fail(path, "between [N, M] needs N shorter than M")
        return ir.Between(start, end)

    def where_with_steps(self, item: Mapping[str, AnyType], path: KeyPath) -> ir.Condition | None:
        parts: list[ir.Condition] = []
        where = self.filters(item.get("where"), (*path, "where"))
        if where is not None:
            parts.extend(where.conditions if isinstance(where, ir.All) else (where,))
        if "and_then" in item:
            parts.append(self.step(item["and_then"], (*path, "and_then"), negated=False))
        if "and_then_not" in item:
            parts.append(self.step(item["and_then_not"], (*path, "and_then_not"), negated=True))
        return _joined(parts)

    def step(self, value: object, path: KeyPath, *, negated: bool) -> ir.Performed:
        allowed = tuple(k for k in STEP_KEYS if not (negated and k in ("at_least", "at_most", "exactly")))
        item = self.mapping(value, path, allowed, "a funnel step")
        event = self.string(self.required(item, "event", path), (*path, "event"), "event")
        within = self.duration(self.required(item, "within", path), (*path, "within"))
        comparator: ir.Comparator = "exactly"
        n = 0
        if not negated:
            comparator, n = self.comparator(item, path)
        return ir.Performed(event, self.where_with_steps(item, path), comparator, n, ir.ParentWithin(within),
                            self.sources(item["exclude_sources"], (*path, "exclude_sources"))
                            if "exclude_sources" in item else ())

    # --- audience conditions --------------------------------------------------------------

    def condition(self, value: object, path: KeyPath) -> ir.Condition:
        kind, inner = self.one_key(value, path, CONDITION_KINDS, "a condition")
        here = (*path, kind)
        if kind in ("all", "any"):
            if not isinstance(inner, list) or not inner:
                raise self.fail(here, f"{kind} must be a non-empty list of conditions")
            parts = tuple(self.condition(v, (*here, i)) for i, v in enumerate(inner))
            return ir.All(parts) if kind == "all" else ir.Any(parts)
        if kind == "not":
            return ir.Not(self.condition(inner, here))
        if kind == "performed":
            return self.performed(inner, here)
        if kind in ("trait", "computed_trait"):
            return self.trait(inner, here, computed=kind == "computed_trait")
        if kind in ("in_audience", "not_in_audience"):
            member = ir.InAudience(self.string(inner, here, kind))
            return member if kind == "in_audience" else ir.Not(member)
        quantified = self.condition(inner, here)
        if kind == "any_user":
            return ir.Quantified("any", quantified)
        if kind == "all_users":
            return ir.Quantified("all", quantified)
        return ir.Quantified("all", ir.Not(quantified))


def _joined(parts: list[ir.Condition]) -> ir.Condition | None:
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else ir.All(tuple(parts))


def _query(reader: _Reader, entry: Mapping[str, AnyType], path: KeyPath,
           parse: Callable[[str], AnyType]) -> AnyType:
    text = reader.string(entry["query"], (*path, "query"), "query")
    try:
        return parse(text)
    except QueryError as exc:
        raise reader.fail((*path, "query"), f"query: {exc.message}") from None


def trait_from_yaml(doc: LocatedDocument, entry: object, path: KeyPath) -> ir.ComputedTrait:
    """One ``computed_traits:`` entry -> :class:`ir.ComputedTrait` (key format checked elsewhere)."""
    r = _Reader(doc)
    item = r.mapping(entry, path, TRAIT_KEYS, "a computed trait")
    key = r.string(r.required(item, "key", path), (*path, "key"), "key")
    name = r.name(item, path)
    options = r.options(item, path)
    if "query" in item:
        for other in ("kind", "event", "property", "function", "window", "where", "min_frequency",
                      "value_type", "exclude_sources"):
            if other in item:
                raise r.fail((*path, other), f"{other} cannot be combined with query")
        body: ir.ComputedTrait = _query(r, item, path, lambda text: parse_trait_query(text, key))
        return ir.ComputedTrait(**{**_fields(body), "name": name, "options": options})
    kind = r.required(item, "kind", path)
    if kind not in TRAIT_KINDS:
        raise r.fail((*path, "kind"), f"unknown kind {kind!r} (expected one of: {', '.join(TRAIT_KINDS)})")
    event = r.string(r.required(item, "event", path), (*path, "event"), "event")
    prop: str | None = None
    if kind != "event_counter":
        prop = r.string(r.required(item, "property", path), (*path, "property"), "property")
    elif "property" in item:
        raise r.fail((*path, "property"), "event_counter takes no property")
    function = None
    if kind == "aggregation":
        function = r.required(item, "function", path)
        if function not in FUNCTIONS:
            raise r.fail((*path, "function"), "function must be one of: sum, avg, min, max")
    elif "function" in item:
        raise r.fail((*path, "function"), "function is only for kind aggregation")
    min_frequency = 2
    if "min_frequency" in item:
        if kind != "most_frequent":
            raise r.fail((*path, "min_frequency"), "min_frequency is only for kind most_frequent")
        min_frequency = r.count(item["min_frequency"], (*path, "min_frequency"))
        if min_frequency < 1:
            raise r.fail((*path, "min_frequency"), "min_frequency must be 1 or more")
    value_type = item.get("value_type", "number")
    if "value_type" in item and not (kind == "aggregation" and function in ("min", "max")):
        raise r.fail((*path, "value_type"), "value_type is only for aggregation min / max")
    if value_type not in ("number", "string"):
        raise r.fail((*path, "value_type"), "value_type must be number or string")
    window = ir.Within(r.duration(item["window"], (*path, "window"))) if "window" in item else None
    return ir.ComputedTrait(
        key=key, kind=kind, event=event, property=prop, function=function,
        where=r.filters(item.get("where"), (*path, "where")), window=window, min_frequency=min_frequency,
        value_type=value_type,
        exclude_sources=r.sources(item["exclude_sources"], (*path, "exclude_sources"))
        if "exclude_sources" in item else (),
        name=name, options=options)


def audience_from_yaml(doc: LocatedDocument, entry: object, path: KeyPath) -> ir.Audience:
    """One ``audiences:`` entry -> :class:`ir.Audience`."""
    r = _Reader(doc)
    item = r.mapping(entry, path, AUDIENCE_KEYS, "an audience")
    key = r.string(r.required(item, "key", path), (*path, "key"), "key")
    if ("query" in item) == ("condition" in item):
        raise r.fail(path, "an audience needs exactly one of condition or query")
    if "query" in item:
        condition: ir.Condition = _query(r, item, path, parse_audience_query)
    else:
        condition = r.condition(item["condition"], (*path, "condition"))
    return ir.Audience(key=key, condition=condition, name=r.name(item, path), options=r.options(item, path))


def _fields(trait: ir.ComputedTrait) -> dict[str, AnyType]:
    return {name: getattr(trait, name) for name in ir.ComputedTrait.__dataclass_fields__}
