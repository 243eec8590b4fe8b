"""Per-(profile, computation) state: what it keeps, how an event folds in, how it evaluates.

Two shapes, chosen per definition when it is compiled (see ``docs/engine.md``):

* **running aggregate** (``fast``): an unwindowed computed trait whose filters read only the
  event itself (no trait references, funnels or relative dates) and whose value does not depend
  on summation order (counter, min, max, first, last, unique list / count, most frequent).
  The state is O(distinct values), never O(events). Events stamped in the future wait in a
  small list and fold in when the clock reaches them.
* **qualifying records** (everything else): the compact records of the events the definition
  reads (time, offset, the properties it looks at), kept in time order and pruned once they are
  older than every window can reach. Evaluation runs the definition compiled to closures
  (``fasteval.py``, a function-by-function mirror of the reference evaluator) over them; pruning
  and due times are what make it incremental.

Every evaluation also returns the due time: the earliest moment after ``now`` at which the value
could change with no new event. It may be early (the engine then re-evaluates and re-arms),
never late, because the value can only move where an event time plus or minus a window, or a
date in the data plus or minus a relative-date span, is crossed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from traitsync.compute.realtime.fasteval import Ctx, compile_definition
from traitsync.compute.reference import as_text, collect_dates, compare
from traitsync.definitions import ir
from traitsync.definitions.operators import RELATIVE_DATE
from traitsync.definitions.serialize import ir_to_dict
from traitsync.spec.event import StoredEvent

#: A record: [timestamp_ms, offset, received_at_ms, source_id, event, properties, context].
Record = list[Any]
Identifiers = Mapping[str, Collection[str]]
_FAST_KINDS = frozenset({"event_counter", "first", "last", "unique_list", "unique_list_count", "most_frequent"})


def definition_hash(defn: ir.Definition) -> str:
    """SHA-256 of the canonical IR: a changed definition is a new version to backfill."""
    return hashlib.sha256(orjson.dumps(ir_to_dict(defn), option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass
class State:
    """The stored state of one (profile, computation). ``value`` None = null / never a member."""

    value: Any = None
    version: int = 0
    records: list[Record] = field(default_factory=list)
    agg: dict[str, Any] | None = None
    due: int | None = None
    #: Whether a row exists (or is being written) in the store; not serialised.
    stored: bool = False

    def dumps(self) -> str:
        return orjson.dumps({"v": self.value, "n": self.version, "r": self.records, "a": self.agg,
                             "d": self.due}).decode()

    @staticmethod
    def loads(text: str | bytes) -> State:
        d = orjson.loads(text)
        return State(d["v"], d["n"], d["r"], d["a"], d["d"], True)


def _static_where(cond: ir.Condition | None) -> bool:
    """Whether a filter reads only the event itself and not the clock (so it is decided at fold time)."""
    for node in ir.iter_conditions(cond):
        if isinstance(node, ir.All | ir.Any | ir.Not):
            continue
        if not isinstance(node, ir.PropertyCondition):
            return False
        if node.op in RELATIVE_DATE or isinstance(node.value, ir.TraitRef | ir.PropertyRef):
            return False
    return True


def _spans(defn: ir.Definition) -> tuple[set[int], bool]:
    """Window and relative-date spans (ms) of the definition itself, and whether dates matter."""
    root = defn.condition if isinstance(defn, ir.Audience) else defn.where
    spans: set[int] = set()
    if isinstance(defn, ir.ComputedTrait):
        spans.update(s * 1000 for s in ir.window_durations(defn.window))
    relative = False
    for node in ir.iter_conditions(root):
        if isinstance(node, ir.Performed):
            spans.update(s * 1000 for s in ir.window_durations(node.window))
        if isinstance(node, ir.TraitCondition | ir.PropertyCondition) and node.op in RELATIVE_DATE:
            relative = True
            if isinstance(node.value, int) and not isinstance(node.value, bool):
                spans.add(node.value * 1000)
    return spans, relative


def _horizon(defn: ir.Definition) -> int | None:
    """How far back (ms) any event can still matter, or None when history is unbounded."""
    root = defn.condition if isinstance(defn, ir.Audience) else defn.where
    reach: list[int] = []
    if isinstance(defn, ir.ComputedTrait):
        if defn.window is None or isinstance(defn.window, ir.ParentWithin):
            return None
        reach.append(defn.window.seconds if isinstance(defn.window, ir.Within) else defn.window.end_seconds)
    for node in ir.iter_conditions(root):
        if isinstance(node, ir.Performed):
            w = node.window
            if w is None:
                return None
            if isinstance(w, ir.Within):
                reach.append(w.seconds)
            elif isinstance(w, ir.Between):
                reach.append(w.end_seconds)
            # ParentWithin: a step happens after its parent, which is itself inside a window.
    return max(reach) * 1000 if reach else None


def _properties_read(defn: ir.Definition) -> tuple[frozenset[str], bool]:
    root = defn.condition if isinstance(defn, ir.Audience) else defn.where
    names: set[str] = set()
    if isinstance(defn, ir.ComputedTrait) and defn.property is not None:
        names.add(defn.property)
    context = False
    for node in ir.iter_conditions(root):
        if isinstance(node, ir.PropertyCondition):
            if node.scope == "context":
                context = True
            else:
                names.add(node.property)
            if isinstance(node.value, ir.PropertyRef):
                names.add(node.value.name)
    return frozenset(names), context


class Compiled:
    """One definition prepared for the engine: what it reads, its state shape, its history rule."""

    def __init__(self, defn: ir.Definition, created_at_ms: int) -> None:
        self.defn = defn
        self.key = defn.key
        self.created_at_ms = created_at_ms
        self.events = defn.events_read()
        self.spans, self.relative = _spans(defn)
        self.horizon = _horizon(defn)
        self.props, self.context = _properties_read(defn)
        self.eligible = frozenset(defn.options.eligible_id_types())
        self.lookback_ms = ir.effective_lookback_seconds(defn) * 1000
        self.historical = defn.options.historical
        self.shape = (self.props, self.context)
        self.audience = isinstance(defn, ir.Audience)
        self.id = defn.id  # a SHA-256 per access: computed once
        self.computation_class = defn.computation_class
        self._value = compile_definition(defn)
        self.reads_traits = bool(defn.traits_read() or defn.depends_on() or self.relative)
        self.fast = (isinstance(defn, ir.ComputedTrait) and defn.window is None and _static_where(defn.where)
                     and (defn.kind in _FAST_KINDS or (defn.kind == "aggregation" and defn.function in ("min", "max"))))

    # -- folding -----------------------------------------------------------------------------------
    def in_history(self, t: int, received_at: int) -> bool:
        """Spec 4.5 history rule (as the reference applies it): fixed per event, so decided once."""
        if received_at >= self.created_at_ms:
            return True
        return self.historical and t > self.created_at_ms - self.lookback_ms

    def record(self, event: StoredEvent, props: Mapping[str, Any],
               shared: dict[tuple[frozenset[str], bool], Record] | None = None) -> Record | None:
        """The compact record of ``event`` (``props``: its properties) for this definition, or None
        if it can never count. ``shared`` reuses one record among definitions reading the same
        properties (records are never mutated, only inserted into states)."""
        if event.event not in self.events or not self.in_history(event.timestamp_ms, event.received_at_ms):
            return None
        if shared is not None:
            rec = shared.get(self.shape)
            if rec is None:
                rec = shared[self.shape] = self._make_record(event, props)
            return rec
        return self._make_record(event, props)

    def _make_record(self, event: StoredEvent, props: Mapping[str, Any]) -> Record:
        kept = {k: props[k] for k in self.props if k in props}
        return [event.timestamp_ms, event.offset, event.received_at_ms, event.source_id, event.event, kept,
                event.context if self.context else None]

    def fold(self, state: State, rec: Record, now: int) -> None:
        """Add one record (in any time order) to the state."""
        if self.fast:
            if state.agg is None:
                state.agg = _empty_agg()
            if rec[0] > now:
                state.agg["f"].append(rec)
            else:
                self._fold_fast(state.agg, rec)
            return
        recs = state.records
        key = (rec[0], rec[1])
        if recs and (recs[-1][0], recs[-1][1]) > key:  # late: insert in order
            i = len(recs)
            while i > 0 and (recs[i - 1][0], recs[i - 1][1]) > key:
                i -= 1
            recs.insert(i, rec)
        else:
            recs.append(rec)

    def _fold_fast(self, agg: dict[str, Any], rec: Record) -> None:
        t = self.defn
        assert isinstance(t, ir.ComputedTrait)
        if rec[4] != t.event or rec[3] in t.exclude_sources:
            return
        if t.where is not None and not _matches_static(t.where, rec[5], rec[6]):
            return
        if t.kind == "event_counter":
            agg["n"] += 1
            return
        assert t.property is not None
        v = rec[5].get(t.property)
        if v is None:
            return
        pos = [rec[0], rec[1]]
        if t.kind == "first":
            if agg["x"] is None or pos < agg["x"][0]:
                agg["x"] = [pos, v]
        elif t.kind == "last":
            if agg["x"] is None or pos > agg["x"][0]:
                agg["x"] = [pos, v]
        elif t.kind == "aggregation":
            if t.value_type == "string":
                ok = isinstance(v, str)
            else:
                ok = isinstance(v, int | float) and not isinstance(v, bool)
            if ok:
                cur = agg["x"]  # [value, position]: ties keep the earliest, as min()/max() in time order
                better = cur is None or (v < cur[0] if t.function == "min" else v > cur[0]) or \
                    (v == cur[0] and pos < cur[1])
                if better:
                    agg["x"] = [v, pos]
        else:
            text = as_text(v)
            counts: dict[str, list[Any]] = agg["u"]
            entry = counts.get(text)
            if entry is None:
                counts[text] = [1, pos, v]
            else:
                entry[0] += 1
                if pos < entry[1]:
                    entry[1], entry[2] = pos, v

    # -- evaluation --------------------------------------------------------------------------------
    def eligible_with(self, ids: Identifiers | None) -> bool:
        return ids is None or any(ids.get(k) for k in self.eligible)

    def evaluate(self, state: State, traits: Mapping[str, Any], eligible: bool,
                 now: int) -> tuple[Any, int | None]:
        """(value at ``now``, due time) for the state; prunes what ``now`` made useless.

        ``eligible``: whether the profile has an identifier of ``self.eligible`` (spec 4.3).
        """
        if self.fast:
            return self._evaluate_fast(state, eligible, now)
        if self.horizon is not None and state.records and state.records[0][0] <= now - self.horizon:
            cut = now - self.horizon
            state.records = [r for r in state.records if r[0] > cut]
        due = self._due(state, traits, now)
        if not eligible:
            return (False if self.audience else None), due
        # Records are in (time, offset) order and already passed the history rule (``record``).
        recs = state.records
        end = len(recs)
        while end and recs[end - 1][0] > now:
            end -= 1
        return self._value(Ctx(now, traits, recs if end == len(recs) else recs[:end])), due

    def _evaluate_fast(self, state: State, eligible: bool, now: int) -> tuple[Any, int | None]:
        agg = state.agg if state.agg is not None else _empty_agg()
        if agg["f"]:
            ready = [r for r in agg["f"] if r[0] <= now]
            if ready:
                agg["f"] = [r for r in agg["f"] if r[0] > now]
                for r in ready:
                    self._fold_fast(agg, r)
            state.agg = agg
        due = min((r[0] for r in agg["f"]), default=None)
        t = self.defn
        assert isinstance(t, ir.ComputedTrait)
        if not eligible:
            return None, due
        if t.kind == "event_counter":
            return agg["n"], due
        if t.kind in ("first", "last"):
            return (None if agg["x"] is None else agg["x"][1]), due
        if t.kind == "aggregation":
            return (None if agg["x"] is None else agg["x"][0]), due
        counts: dict[str, list[Any]] = agg["u"]
        if t.kind == "unique_list_count":
            return len(counts), due
        if t.kind == "unique_list":
            return ([counts[k][2] for k in sorted(counts)] if counts else None), due
        if not counts:
            return None, due
        best = min(counts, key=lambda k: (-counts[k][0], k))
        return (best if counts[best][0] >= t.min_frequency else None), due

    def _due(self, state: State, traits: Mapping[str, Any], now: int) -> int | None:
        best: int | None = None

        def offer(c: int) -> None:
            nonlocal best
            if c > now and (best is None or c < best):
                best = c

        for r in state.records:
            offer(r[0])
            for s in self.spans:
                offer(r[0] + s)
        if self.relative:
            moments: set[int] = set()
            collect_dates(traits, moments)
            for r in state.records:
                collect_dates(r[5], moments)
                if r[6]:
                    collect_dates(r[6], moments)
            for m in moments:
                for s in self.spans | {0}:
                    for c in (m - s, m - s + 1, m, m + 1, m + s, m + s + 1):
                        offer(c)
        return best


def _empty_agg() -> dict[str, Any]:
    return {"n": 0, "x": None, "u": {}, "f": []}


def _matches_static(cond: ir.Condition, props: Mapping[str, Any], context: Mapping[str, Any] | None) -> bool:
    if isinstance(cond, ir.All):
        return all(_matches_static(c, props, context) for c in cond.conditions)
    if isinstance(cond, ir.Any):
        return any(_matches_static(c, props, context) for c in cond.conditions)
    if isinstance(cond, ir.Not):
        return not _matches_static(cond.condition, props, context)
    assert isinstance(cond, ir.PropertyCondition)
    if cond.scope == "context":
        node: Any = context or {}
        for part in [p.replace("\0", ".") for p in cond.property.replace("\\.", "\0").split(".")]:
            node = node.get(part) if isinstance(node, Mapping) else None
        actual = node
    else:
        actual = props.get(cond.property)
    return compare(cond.op, actual, cond.value, 0)
