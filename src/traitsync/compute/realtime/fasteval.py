"""Definitions compiled to closures over compact records: the reference's meaning, without its overhead.

The reference evaluator (``compute/reference.py``) is the oracle and stays deliberately plain: it
rebuilds event objects, sorts them and walks the IR on every call. The engine evaluates tens of
definitions per event, so it compiles each definition once into nested closures that read the
engine's records (``[timestamp_ms, offset, received_at_ms, source_id, event, properties,
context]``), grouped by event name, each list in (timestamp, offset) order and already cut to
what is visible at ``now`` and passes the history rule. Grouping by name is what lets
``_qualifying`` skip the reference's per-event name test.

Every closure mirrors one function of the reference line by line (``_holds``, ``_matches``,
``_qualifying``, ``_in_window``, ``_trait_value``, ``_aggregate``) and reuses its ``compare`` and
``as_text``, so equality with the oracle is by construction; the property test in
``tests/compute/realtime`` checks it on random definitions and streams.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from traitsync.compute.reference import as_text, compare
from traitsync.definitions import ir

Record = list[Any]
_NONE: tuple[Record, ...] = ()


class Ctx:
    """One evaluation: the moment, the traits conditions see, and the visible records by event name."""

    __slots__ = ("events", "now", "traits")

    def __init__(self, now: int, traits: Mapping[str, Any], events: Mapping[str, list[Record]]) -> None:
        self.now = now
        self.traits = traits
        self.events = events


Holds = Callable[[Ctx], bool]
Matches = Callable[[Ctx, Record, "Record | None"], bool]
Qualifying = Callable[[Ctx, "Record | None"], list[Record]]
Operand = Callable[[Ctx, "Record | None", "Record | None"], Any]


def walk(traits: Mapping[str, Any], key: str) -> Any:
    """The reference's ``_walk``: ``.`` walks into objects, ``\\.`` is a literal dot."""
    if "." not in key:
        return traits.get(key)
    node: Any = traits
    for part in [p.replace("\0", ".") for p in key.replace("\\.", "\0").split(".")]:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _operand(value: ir.Value) -> Operand:
    if isinstance(value, ir.TraitRef):
        key = value.key
        return lambda c, e, p: walk(c.traits, key)
    if isinstance(value, ir.PropertyRef):
        name = value.name
        if value.parent:
            return lambda c, e, p: None if p is None else p[5].get(name)
        return lambda c, e, p: None if e is None else e[5].get(name)
    return lambda c, e, p: value


def _window(window: ir.Window | None) -> Callable[[int, int, Record | None], bool] | None:
    """``_in_window`` as a closure (None: no window, every time qualifies)."""
    if window is None:
        return None
    if isinstance(window, ir.Within):
        w = window.seconds * 1000
        return lambda t, now, parent: t > now - w
    if isinstance(window, ir.Between):
        lo, hi = window.end_seconds * 1000, window.start_seconds * 1000
        return lambda t, now, parent: now - lo < t <= now - hi
    span = window.seconds * 1000

    def parent_within(t: int, now: int, parent: Record | None) -> bool:
        if parent is None:
            raise ValueError("a funnel step window needs a parent event")
        return bool(parent[0] < t <= parent[0] + span)

    return parent_within


def qualifying(name: str, where: ir.Condition | None, window: ir.Window | None,
               exclude_sources: tuple[str, ...]) -> Qualifying:
    """``_qualifying``: the visible records named ``name`` in the window that match ``where``."""
    in_window = _window(window)
    match = None if where is None else matches(where)
    excluded = frozenset(exclude_sources)
    if match is None and not excluded:
        if in_window is None:
            return lambda c, parent: list(c.events.get(name, _NONE))
        return lambda c, parent: [e for e in c.events.get(name, _NONE) if in_window(e[0], c.now, parent)]

    def run(c: Ctx, parent: Record | None) -> list[Record]:
        now = c.now
        return [e for e in c.events.get(name, _NONE)
                if e[3] not in excluded
                and (in_window is None or in_window(e[0], now, parent))
                and (match is None or match(c, e, parent))]

    return run


def _count_holds(comparator: ir.Comparator, n: int) -> Callable[[int], bool]:
    if comparator == "at_least":
        return lambda count: count >= n
    if comparator == "at_most":
        return lambda count: count <= n
    return lambda count: count == n


def matches(cond: ir.Condition) -> Matches:
    """``_matches``: an event-level condition on a record, ``parent`` being the funnel parent."""
    if isinstance(cond, ir.All):
        parts = [matches(c) for c in cond.conditions]
        return lambda c, e, p: all(m(c, e, p) for m in parts)
    if isinstance(cond, ir.Any):
        parts = [matches(c) for c in cond.conditions]
        return lambda c, e, p: any(m(c, e, p) for m in parts)
    if isinstance(cond, ir.Not):
        inner = matches(cond.condition)
        return lambda c, e, p: not inner(c, e, p)
    if isinstance(cond, ir.PropertyCondition):
        op, operand = cond.op, _operand(cond.value)
        if cond.scope == "context":
            path = cond.property
            return lambda c, e, p: compare(op, walk(e[6] or {}, path), operand(c, e, p), c.now)
        prop = cond.property
        if not isinstance(cond.value, ir.TraitRef | ir.PropertyRef):
            literal = cond.value
            return lambda c, e, p: compare(op, e[5].get(prop), literal, c.now)
        return lambda c, e, p: compare(op, e[5].get(prop), operand(c, e, p), c.now)
    if isinstance(cond, ir.Performed) and isinstance(cond.window, ir.ParentWithin):
        children = qualifying(cond.event, cond.where, cond.window, cond.exclude_sources)
        holds = _count_holds(cond.comparator, cond.n)
        span = cond.window.seconds * 1000
        if cond.comparator == "at_least":
            n = cond.n
            return lambda c, e, p: len(children(c, e)) >= n
        return lambda c, e, p: c.now >= e[0] + span and holds(len(children(c, e)))
    profile_level = holds_fn(cond)
    return lambda c, e, p: profile_level(c)


def holds_fn(cond: ir.Condition) -> Holds:
    """``_holds``: a profile-level condition."""
    if isinstance(cond, ir.All):
        parts = [holds_fn(c) for c in cond.conditions]
        return lambda c: all(h(c) for h in parts)
    if isinstance(cond, ir.Any):
        parts = [holds_fn(c) for c in cond.conditions]
        return lambda c: any(h(c) for h in parts)
    if isinstance(cond, ir.Not):
        inner = holds_fn(cond.condition)
        return lambda c: not inner(c)
    if isinstance(cond, ir.Performed):
        found = qualifying(cond.event, cond.where, cond.window, cond.exclude_sources)
        holds = _count_holds(cond.comparator, cond.n)
        return lambda c: holds(len(found(c, None)))
    if isinstance(cond, ir.TraitCondition):
        key, op, operand = cond.key, cond.op, _operand(cond.value)
        return lambda c: compare(op, walk(c.traits, key), operand(c, None, None), c.now)
    if isinstance(cond, ir.InAudience):
        key = cond.key
        return lambda c: walk(c.traits, key) is True
    kind = type(cond).__name__

    def unsupported(c: Ctx) -> bool:
        raise ValueError(f"{kind} is only valid inside an event's where")

    return unsupported


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def trait_value(t: ir.ComputedTrait) -> Callable[[Ctx], Any]:
    """``_trait_value`` + ``_aggregate``: the value over the qualifying records, in time order."""
    found = qualifying(t.event, t.where, t.window, t.exclude_sources)
    if t.kind == "event_counter":
        return lambda c: len(found(c, None))
    assert t.property is not None
    prop = t.property

    def values(c: Ctx) -> list[Any]:
        return [v for v in (e[5].get(prop) for e in found(c, None)) if v is not None]

    if t.kind == "first":
        return lambda c: next(iter(values(c)), None)
    if t.kind == "last":
        def last(c: Ctx) -> Any:
            vs = values(c)
            return vs[-1] if vs else None
        return last
    if t.kind == "aggregation":
        function, as_string = t.function, t.value_type == "string"

        def aggregate(c: Ctx) -> Any:
            vs = values(c)
            if function in ("min", "max") and as_string:
                texts = [v for v in vs if isinstance(v, str)]
                if not texts:
                    return None
                return min(texts) if function == "min" else max(texts)
            numbers = [v for v in vs if _is_number(v)]
            if not numbers:
                return None
            if function == "sum":
                return sum(numbers)
            if function == "avg":
                return sum(numbers) / len(numbers)
            return min(numbers) if function == "min" else max(numbers)

        return aggregate
    kind, min_frequency = t.kind, t.min_frequency

    def distinct(c: Ctx) -> Any:
        first: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for v in values(c):
            text = as_text(v)
            first.setdefault(text, v)
            counts[text] = counts.get(text, 0) + 1
        if kind == "unique_list_count":
            return len(first)
        if kind == "unique_list":
            return [first[k] for k in sorted(first)] if first else None
        if not counts:
            return None
        best = min(counts, key=lambda k: (-counts[k], k))
        return best if counts[best] >= min_frequency else None

    return distinct


def compile_definition(defn: ir.Definition) -> Callable[[Ctx], Any]:
    """The value of an eligible profile (eligibility is checked by the caller, as the reference does)."""
    if isinstance(defn, ir.ComputedTrait):
        return trait_value(defn)
    return holds_fn(defn.condition)
