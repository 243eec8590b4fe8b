"""The reference evaluator: one profile's whole history in, one value out. The engines' oracle.

It is deliberately plain (re-scan every event for every question, no state, no indexes) so that
it is obviously right; the realtime and batch engines are tested against it on the same events
and ``as_of``. Every semantic choice the engines must copy is stated here and in
``docs/definitions.md``:

* Events after ``as_of`` do not exist yet. Events are ordered by (timestamp, log offset).
* ``Within(W)``: ``t > as_of - W``. ``Between(N, M)``: ``as_of - M < t <= as_of - N``.
  Funnel step ``ParentWithin(P)``: ``parent.t < t <= parent.t + P`` (strictly after the parent).
* A funnel step that a later event could still break (``at_most`` / ``exactly``, so also "and
  then did not") holds only once its window has closed (``as_of >= parent.t + P``); an
  ``at_least`` step holds as soon as it is reached.
* Value-reading traits only see qualifying events whose property is present and not null.
  ``event_counter`` and ``unique_list_count`` return 0 (a count of nothing); the other kinds
  return None when nothing qualifies. ``sum`` of integers stays an integer; ``avg`` is a float.
* ``most_frequent`` and ``unique_list`` compare values as text (spec 4.8: ``mode`` treats data
  as strings; ``5`` and ``"5"`` are one value); ties and sorting use that text. ``most_frequent``
  returns the text; ``unique_list`` returns the first-seen original values, sorted by text.
* Operators: see :func:`compare`. Date operators read ISO 8601 strings only, in UTC, and the
  relative ones are inclusive at both ends (spec 4.8).
* A trait key that names a defined computation reads that computation's value (computed
  values are traits on the profile and shadow a custom trait of the same key); other keys read
  ``traits``, where ``.`` walks into objects and ``\\.`` is a literal dot.
* ``identifiers`` (id type -> values), when given, applies eligibility (spec 4.3): a profile
  without an eligible identifier is in no audience (False) and has no trait value (None).
* ``created_at_ms``, when given, applies the definition's history options (spec 4.5) to the
  top-level definition: with ``historical: false`` only events received at or after creation
  count; otherwise also events with ``t > created_at - lookback``. Dependencies always see
  their whole history, as if created long ago.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field

from traitsync.definitions import ir
from traitsync.definitions.durations import parse_instant_ms
from traitsync.definitions.operators import RELATIVE_DATE
from traitsync.spec.event import StoredEvent

#: One account member for account-level definitions: (that user's events, that user's traits), and
#: optionally that user's identifiers (id type -> values), which apply eligibility to the user-level
#: computations a clause reads (as on the user's own profile).
Member = (tuple[Sequence[StoredEvent], Mapping[str, object]]
          | tuple[Sequence[StoredEvent], Mapping[str, object], Mapping[str, Collection[str]]])


@dataclass
class _Profile:
    events: list[StoredEvent]
    all_events: list[StoredEvent]
    traits: Mapping[str, object]
    as_of: int
    definitions: Mapping[str, ir.Definition]
    identifiers: Mapping[str, Collection[str]] | None
    members: Sequence[Member] | None
    memo: dict[str, object] = field(default_factory=dict)

    def visible(self, events: Sequence[StoredEvent]) -> list[StoredEvent]:
        return sorted((e for e in events if e.timestamp_ms <= self.as_of),
                      key=lambda e: (e.timestamp_ms, e.offset))

    def value_of(self, key: str) -> object:
        """A trait as conditions see it: a dependency's computed value, else the custom trait."""
        defn = self.definitions.get(key)
        if defn is not None:
            if key not in self.memo:
                self.memo[key] = _evaluate(defn, self, self.all_events)
            return self.memo[key]
        return _walk(self.traits, key)


def _walk(traits: Mapping[str, object], key: str) -> object:
    parts = [p.replace("\0", ".") for p in key.replace("\\.", "\0").split(".")]
    node: object = traits
    for part in parts:
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


# --- values ---------------------------------------------------------------------------------


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_text(value: object) -> str:
    """The text form used by ``most_frequent``, ``unique_list`` and ``contains`` on non-strings."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _equal(a: object, b: object) -> bool:
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return a == b
    return type(a) is type(b) and a == b


def compare(op: str, actual: object, expected: object, as_of: int) -> bool:
    """Whether ``actual <op> expected`` holds at ``as_of``.

    A missing ``actual`` (None) satisfies only ``not_exists`` and ``not_contains`` (spec 4.8:
    ``omits`` is ``NOT contains``, while ``differs`` is true only if the value exists). Ordering
    needs numbers on both sides (no string-to-number coercion); ``equals`` is type-exact except
    that 1 equals 1.0, and strings compare case-sensitively.
    """
    if op == "exists":
        return actual is not None
    if op == "not_exists":
        return actual is None
    if op == "not_contains" and actual is None:
        return True
    if actual is None or expected is None:
        return False
    if op == "equals":
        return _equal(actual, expected)
    if op == "not_equals":
        return not _equal(actual, expected)
    if op in ("greater_than", "greater_than_or_equal", "less_than", "less_than_or_equal"):
        if not (_is_number(actual) and _is_number(expected)):
            return False
        a, b = float(actual), float(expected)  # type: ignore[arg-type]
        return {"greater_than": a > b, "greater_than_or_equal": a >= b,
                "less_than": a < b, "less_than_or_equal": a <= b}[op]
    if op in ("contains", "not_contains"):
        needles = expected if isinstance(expected, tuple) else (expected,)
        text = as_text(actual)
        found = any(isinstance(n, str) and n in text for n in needles)
        return found if op == "contains" else not found
    if op in ("starts_with", "ends_with"):
        if not (isinstance(actual, str) and isinstance(expected, str)):
            return False
        return actual.startswith(expected) if op == "starts_with" else actual.endswith(expected)
    if op in ("one_of", "none_of"):
        options = expected if isinstance(expected, tuple) else (expected,)
        hit = any(_equal(actual, v) for v in options)
        return hit if op == "one_of" else not hit
    moment = parse_instant_ms(actual)
    if moment is None:
        return False
    if op in ("before_date", "after_date"):
        limit = parse_instant_ms(expected)
        if limit is None:
            return False
        return moment < limit if op == "before_date" else moment > limit
    if not isinstance(expected, int):
        return False
    span = expected * 1000
    if op == "within_last":
        return as_of - span <= moment <= as_of
    if op == "within_next":
        return as_of <= moment <= as_of + span
    if op == "before_last":
        return moment <= as_of - span
    if op == "after_next":
        return moment >= as_of + span
    raise ValueError(f"unknown operator {op!r}")


# --- events ---------------------------------------------------------------------------------


def _in_window(t: int, window: ir.Window | None, as_of: int, parent: StoredEvent | None) -> bool:
    if window is None:
        return True
    if isinstance(window, ir.Within):
        return t > as_of - window.seconds * 1000
    if isinstance(window, ir.Between):
        return as_of - window.end_seconds * 1000 < t <= as_of - window.start_seconds * 1000
    if parent is None:
        raise ValueError("a funnel step window needs a parent event")
    return parent.timestamp_ms < t <= parent.timestamp_ms + window.seconds * 1000


def _context_value(event: StoredEvent, path: str) -> object:
    return _walk(event.context, path)


def _operand(p: _Profile, value: ir.Value, event: StoredEvent | None, parent: StoredEvent | None) -> object:
    if isinstance(value, ir.TraitRef):
        return p.value_of(value.key)
    if isinstance(value, ir.PropertyRef):
        source = parent if value.parent else event
        return None if source is None else source.properties.get(value.name)
    return value


def _matches(p: _Profile, cond: ir.Condition, event: StoredEvent, parent: StoredEvent | None) -> bool:
    """An event-level condition (a ``where``) on ``event``; ``parent`` is the funnel parent."""
    if isinstance(cond, ir.All):
        return all(_matches(p, c, event, parent) for c in cond.conditions)
    if isinstance(cond, ir.Any):
        return any(_matches(p, c, event, parent) for c in cond.conditions)
    if isinstance(cond, ir.Not):
        return not _matches(p, cond.condition, event, parent)
    if isinstance(cond, ir.PropertyCondition):
        if cond.scope == "context":
            actual = _context_value(event, cond.property)
        else:
            actual = event.properties.get(cond.property)
        return compare(cond.op, actual, _operand(p, cond.value, event, parent), p.as_of)
    if isinstance(cond, ir.Performed) and isinstance(cond.window, ir.ParentWithin):
        count = len(_qualifying(p, cond.event, cond.where, cond.window, cond.exclude_sources, event))
        if cond.comparator == "at_least":
            return count >= cond.n
        closed = p.as_of >= event.timestamp_ms + cond.window.seconds * 1000
        return closed and _count_holds(cond.comparator, count, cond.n)
    return _holds(p, cond)


def _qualifying(p: _Profile, name: str, where: ir.Condition | None, window: ir.Window | None,
                exclude_sources: tuple[str, ...], parent: StoredEvent | None) -> list[StoredEvent]:
    return [e for e in p.events
            if e.event == name and e.source_id not in exclude_sources
            and _in_window(e.timestamp_ms, window, p.as_of, parent)
            and (where is None or _matches(p, where, e, parent))]


def _count_holds(comparator: ir.Comparator, count: int, n: int) -> bool:
    if comparator == "at_least":
        return count >= n
    if comparator == "at_most":
        return count <= n
    return count == n


# --- profile conditions ---------------------------------------------------------------------


def _holds(p: _Profile, cond: ir.Condition) -> bool:
    if isinstance(cond, ir.All):
        return all(_holds(p, c) for c in cond.conditions)
    if isinstance(cond, ir.Any):
        return any(_holds(p, c) for c in cond.conditions)
    if isinstance(cond, ir.Not):
        return not _holds(p, cond.condition)
    if isinstance(cond, ir.Performed):
        count = len(_qualifying(p, cond.event, cond.where, cond.window, cond.exclude_sources, None))
        return _count_holds(cond.comparator, count, cond.n)
    if isinstance(cond, ir.TraitCondition):
        return compare(cond.op, p.value_of(cond.key), _operand(p, cond.value, None, None), p.as_of)
    if isinstance(cond, ir.InAudience):
        return p.value_of(cond.key) is True
    if isinstance(cond, ir.Quantified):
        if p.members is None:
            raise ValueError("an account-level condition (ANY / ALL) needs the account's members")
        results = [_holds(_member(p, m), cond.condition) for m in p.members]
        return any(results) if cond.quantifier == "any" else bool(results) and all(results)
    raise ValueError(f"{type(cond).__name__} is only valid inside an event's where")


def _member(p: _Profile, member: Member) -> _Profile:
    events, traits = member[0], member[1]
    identifiers = member[2] if len(member) > 2 else None  # type: ignore[misc]
    sub = _Profile([], [], traits, p.as_of, p.definitions, identifiers, None)
    sub.events = sub.all_events = sub.visible(events)
    return sub


# --- traits ---------------------------------------------------------------------------------


def _trait_value(p: _Profile, t: ir.ComputedTrait, events: list[StoredEvent]) -> object:
    q = _Profile(events, p.all_events, p.traits, p.as_of, p.definitions, p.identifiers, p.members, p.memo)
    qualifying = _qualifying(q, t.event, t.where, t.window, t.exclude_sources, None)
    if t.kind == "event_counter":
        return len(qualifying)
    assert t.property is not None
    values = [v for v in (e.properties.get(t.property) for e in qualifying) if v is not None]
    if t.kind == "first":
        return values[0] if values else None
    if t.kind == "last":
        return values[-1] if values else None
    if t.kind == "aggregation":
        return _aggregate(t, values)
    distinct: dict[str, object] = {}
    counts: dict[str, int] = {}
    for v in values:
        text = as_text(v)
        distinct.setdefault(text, v)
        counts[text] = counts.get(text, 0) + 1
    if t.kind == "unique_list_count":
        return len(distinct)
    if t.kind == "unique_list":
        return [distinct[k] for k in sorted(distinct)] if distinct else None
    if not counts:
        return None
    best = min(counts, key=lambda k: (-counts[k], k))
    return best if counts[best] >= t.min_frequency else None


def _aggregate(t: ir.ComputedTrait, values: list[object]) -> object:
    if t.function in ("min", "max") and t.value_type == "string":
        texts = [v for v in values if isinstance(v, str)]
        if not texts:
            return None
        return min(texts) if t.function == "min" else max(texts)
    numbers: list[int | float] = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    if not numbers:
        return None
    if t.function == "sum":
        return sum(numbers)
    if t.function == "avg":
        return sum(numbers) / len(numbers)
    return min(numbers) if t.function == "min" else max(numbers)


# --- entry points ---------------------------------------------------------------------------


def _eligible(p: _Profile, defn: ir.Definition) -> bool:
    if p.identifiers is None:
        return True
    return any(p.identifiers.get(kind) for kind in defn.options.eligible_id_types())


def _evaluate(defn: ir.Definition, p: _Profile, events: list[StoredEvent]) -> object:
    if not _eligible(p, defn):
        return False if isinstance(defn, ir.Audience) else None
    if isinstance(defn, ir.ComputedTrait):
        return _trait_value(p, defn, events)
    q = _Profile(events, p.all_events, p.traits, p.as_of, p.definitions, p.identifiers, p.members, p.memo)
    return _holds(q, defn.condition)


def _history(defn: ir.Definition, events: list[StoredEvent], created_at_ms: int | None) -> list[StoredEvent]:
    if created_at_ms is None:
        return events
    if not defn.options.historical:
        return [e for e in events if e.received_at_ms >= created_at_ms]
    since = created_at_ms - ir.effective_lookback_seconds(defn) * 1000
    return [e for e in events if e.received_at_ms >= created_at_ms or e.timestamp_ms > since]


def evaluate(definition: ir.Definition, events: Sequence[StoredEvent], traits: Mapping[str, object],
             as_of_ms: int, *, definitions: Mapping[str, ir.Definition],
             identifiers: Mapping[str, Collection[str]] | None = None, created_at_ms: int | None = None,
             members: Sequence[Member] | None = None) -> object:
    """The value of ``definition`` for one profile at ``as_of_ms``: a bool for an audience.

    ``events`` is the profile's full history (any order), ``traits`` its custom traits;
    referenced computations are looked up in ``definitions`` and evaluated on the same profile.
    ``members`` is only for account-level ``ANY`` / ``ALL`` clauses.
    """
    p = _Profile([], [], traits, as_of_ms, definitions, identifiers, members)
    p.events = p.all_events = p.visible(events)
    return _evaluate(definition, p, _history(definition, p.events, created_at_ms))


# --- due times ------------------------------------------------------------------------------


def _durations(defn: ir.Definition, definitions: Mapping[str, ir.Definition], seen: set[str]) -> set[int]:
    """Every window and relative-date span (ms) in ``defn`` and what it reads, transitively."""
    seen.add(defn.key)
    root = defn.condition if isinstance(defn, ir.Audience) else defn.where
    spans = {s * 1000 for s in (ir.window_durations(defn.window) if isinstance(defn, ir.ComputedTrait) else ())}
    for node in ir.iter_conditions(root):
        if isinstance(node, ir.Performed):
            spans.update(s * 1000 for s in ir.window_durations(node.window))
        relative = isinstance(node, ir.TraitCondition | ir.PropertyCondition) and node.op in RELATIVE_DATE
        if relative and isinstance(node.value, int):  # type: ignore[union-attr]
            spans.add(node.value * 1000)  # type: ignore[union-attr]
    for key in defn.depends_on():
        dep = definitions.get(key)
        if dep is not None and key not in seen:
            spans |= _durations(dep, definitions, seen)
    return spans


def collect_dates(value: object, out: set[int]) -> None:
    """Every ISO instant inside ``value`` (nested too): the moments a date operator can flip at."""
    moment = parse_instant_ms(value)
    if moment is not None:
        out.add(moment)
    elif isinstance(value, Mapping):
        for v in value.values():
            collect_dates(v, out)
    elif isinstance(value, list):
        for v in value:
            collect_dates(v, out)


def next_change_ms(definition: ir.Definition, events: Sequence[StoredEvent], traits: Mapping[str, object],
                   as_of_ms: int, *, definitions: Mapping[str, ir.Definition],
                   identifiers: Mapping[str, Collection[str]] | None = None, created_at_ms: int | None = None,
                   members: Sequence[Member] | None = None) -> int | None:
    """The earliest moment after ``as_of_ms`` at which the value differs with no new event.

    Events already stored with a timestamp after ``as_of_ms`` count as "not new": they appear
    when the clock reaches them. The value can only change where some event time plus or
    minus a window, or some date in the data plus or minus a relative-date span, is crossed;
    every such candidate is tried in order, so the answer is exact (an engine's due time may
    be earlier, never later). None means the value stays as it is forever.
    """
    spans = _durations(definition, definitions, set())
    all_events = list(events)
    for m in members or ():
        all_events.extend(m[0])
    candidates: set[int] = set()
    for e in all_events:
        candidates.add(e.timestamp_ms)
        candidates.update(e.timestamp_ms + s for s in spans)
    moments: set[int] = set()
    collect_dates(dict(traits), moments)
    for m in members or ():
        collect_dates(dict(m[1]), moments)
    for e in all_events:
        collect_dates(e.properties, moments)
        collect_dates(e.context, moments)
    for moment in moments:
        for s in spans:
            candidates.update({moment - s, moment - s + 1, moment, moment + 1, moment + s, moment + s + 1})

    def value_at(t: int) -> object:
        return evaluate(definition, events, traits, t, definitions=definitions, identifiers=identifiers,
                        created_at_ms=created_at_ms, members=members)

    now = value_at(as_of_ms)
    for t in sorted(c for c in candidates if c > as_of_ms):
        if value_at(t) != now:
            return t
    return None
