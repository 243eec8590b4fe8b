"""Per-profile state: what it keeps, how an event folds in, how each computation evaluates.

One document per profile (``compute_profile_state``), because the engine's cost was dominated
by writing ~7 rows per event, each copying the same event record (see ``docs/engine.md``):

* **records by event name**, shared by every computation reading that name: the compact
  records (time, offset, received_at, source, event, the properties any reader looks at,
  context if read) in (time, offset) order, pruned once older than every reader's window can
  reach. An event is kept once, however many computations read it.
* **per computation** (:class:`State`): value, version, due time and, for a running-aggregate
  definition, its aggregate.

Two evaluation shapes, chosen per definition when it is compiled:

* **running aggregate** (``fast``): an unwindowed computed trait whose filters read only the
  event itself (no trait references, funnels or relative dates) and whose value does not depend
  on summation order (counter, min, max, first, last, unique list / count, most frequent).
  The aggregate is O(distinct values), never O(events). Events stamped in the future wait in a
  small list and fold in when the clock reaches them.
* **over the records** (everything else): the definition compiled to closures (``fasteval.py``,
  a function-by-function mirror of the reference evaluator) over the profile's records of the
  names it reads; pruning and due times are what make it incremental.

Every evaluation also returns the due time: the earliest moment after ``now`` at which the value
could change with no new event. It may be early (the engine then re-evaluates and re-arms),
never late, because the value can only move where an event time plus or minus a window, or a
date in the data plus or minus a relative-date span, is crossed.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_right
from collections.abc import Collection, Mapping
from operator import itemgetter
from typing import Any

import orjson

from traitsync.compute.realtime.accounts import strip_quantifiers
from traitsync.compute.realtime.fasteval import Ctx, compile_definition
from traitsync.compute.reference import as_text, collect_dates, compare
from traitsync.definitions import ir
from traitsync.definitions.operators import RELATIVE_DATE
from traitsync.definitions.serialize import ir_to_dict
from traitsync.spec.event import StoredEvent

#: A record: [timestamp_ms, offset, received_at_ms, source_id, event, properties, context].
Record = list[Any]
#: A profile's records: event name -> records in (timestamp, offset) order.
Records = dict[str, list[Record]]
Identifiers = Mapping[str, Collection[str]]
_FAST_KINDS = frozenset({"event_counter", "first", "last", "unique_list", "unique_list_count", "most_frequent"})
_NO_RECORDS: list[Record] = []
_TIME = itemgetter(0)


def definition_hash(defn: ir.Definition) -> str:
    """SHA-256 of the canonical IR: a changed definition is a new version to backfill."""
    return hashlib.sha256(orjson.dumps(ir_to_dict(defn), option=orjson.OPT_SORT_KEYS)).hexdigest()


class State:
    """One (profile, computation): ``value`` None = null / never a member; ``agg`` for fast definitions."""

    __slots__ = ("agg", "due", "value", "version")

    def __init__(self, value: Any = None, version: int = 0, agg: dict[str, Any] | None = None,
                 due: int | None = None) -> None:
        self.value = value
        self.version = version
        self.agg = agg
        self.due = due

    def empty(self) -> bool:
        """A state that is what a missing entry means (never a value, nothing kept, no due time)."""
        return self.value is None and not self.version and self.agg is None and self.due is None


class ProfileState:
    """Everything the engine stores for one profile; one JSON document, one due row."""

    __slots__ = ("eligible", "ids", "latest", "links", "members_in", "min_received", "pid", "records", "states",
                 "stored_due", "traits")

    def __init__(self, records: Records | None = None, states: dict[str, State] | None = None,
                 stored_due: int | None = None, links: list[str] | None = None,
                 members_in: dict[str, list[str]] | None = None) -> None:
        self.records: Records = {} if records is None else records
        self.states: dict[str, State] = {} if states is None else states
        #: Account links as the engine has seen them in the stream (only kept while account-level
        #: definitions exist): a user's accounts, or an account's member users.
        self.links: set[str] = set(links) if links else set()
        #: An account's members in each hidden member audience (``accounts.py``).
        self.members_in: dict[str, set[str]] = {k: set(v) for k, v in members_in.items()} if members_in else {}
        #: The due time the store holds for this profile (None = no row).
        self.stored_due = stored_due
        #: The smallest received_at of any record (may be stale-low after pruning: only ever too small,
        #: which just makes a history-restricted definition filter when it need not).
        self.min_received = min((r[2] for recs in self.records.values() for r in recs), default=None)
        #: The largest timestamp of any record (may be stale-high after pruning): when it is not after
        #: ``now``, no record is in the future and evaluation can read the lists as they are.
        self.latest = max((recs[-1][0] for recs in self.records.values() if recs), default=None)
        # Not stored, only cached while the profile is in the engine's memory (None = not loaded yet):
        self.traits: dict[str, Any] | None = None
        self.ids: dict[str, list[str]] | None = None
        #: Eligibility per set of eligible id types (most definitions share one), while ``ids`` holds.
        self.eligible: dict[frozenset[str], bool] = {}
        #: The profile id, set by ``store.load_states`` (journeys' randomised splits hash it).
        self.pid: str | None = None

    def dumps(self) -> tuple[str, int | None]:
        """The document and the earliest due time in it, in one pass over the states."""
        # Every state is written, empty ones too: a state exists once it has been evaluated, and
        # skipping the few empty ones cost more than their bytes.
        states: dict[str, list[Any]] = {}
        due: int | None = None
        for k, s in self.states.items():
            d = s.due
            if d is not None and (due is None or d < due):
                due = d
            states[k] = [s.value, s.version, s.agg, d]
        doc: dict[str, Any] = {"r": self.records, "s": states, "d": due}
        if self.links:
            doc["a"] = sorted(self.links)
        if self.members_in:
            doc["q"] = {k: sorted(v) for k, v in self.members_in.items() if v}
        return orjson.dumps(doc).decode(), due

    @staticmethod
    def loads(text: str | bytes) -> ProfileState:
        d = orjson.loads(text)
        return ProfileState(d["r"], {k: State(v[0], v[1], v[2], v[3]) for k, v in d["s"].items()}, d["d"],
                            d.get("a"), d.get("q"))

    def insert(self, name: str, rec: Record) -> None:
        """Add a record in (time, offset) order (late events insert; usually an append)."""
        recs = self.records.get(name)
        if not recs:
            self.records[name] = [rec]
        elif recs[-1][0] < rec[0] or (recs[-1][0] == rec[0] and recs[-1][1] < rec[1]):
            recs.append(rec)
        else:
            key = (rec[0], rec[1])
            i = len(recs)
            while i > 0 and (recs[i - 1][0], recs[i - 1][1]) > key:
                i -= 1
            recs.insert(i, rec)
        if self.min_received is None or rec[2] < self.min_received:
            self.min_received = rec[2]
        if self.latest is None or rec[0] > self.latest:
            self.latest = rec[0]

    def prune(self, horizons: Mapping[str, int | None], now: int) -> bool:
        """Drop records older than every reader of their name can reach; whether anything went."""
        pruned = False
        for name, recs in self.records.items():
            horizon = horizons.get(name, 0)
            if horizon is not None and recs and recs[0][0] <= now - horizon:
                cut = now - horizon
                self.records[name] = [r for r in recs if r[0] > cut]
                pruned = True
        return pruned


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


def make_record(event: StoredEvent, props: Mapping[str, Any], names: frozenset[str], context: bool) -> Record:
    """The compact record of ``event`` keeping only ``names`` of its properties (and context if read)."""
    return [event.timestamp_ms, event.offset, event.received_at_ms, event.source_id, event.event,
            {k: props[k] for k in names if k in props}, event.context if context else None]


class Compiled:
    """One definition prepared for the engine: what it reads, its state shape, its history rule."""

    def __init__(self, defn: ir.Definition, created_at_ms: int, *, internal: bool = False) -> None:
        self.defn = defn
        self.key = defn.key
        #: A hidden member audience (``accounts.py``): every user is eligible, nothing is published.
        self.internal = internal
        #: Evaluated on account profiles (over the union of the members' events); its ANY / ALL
        #: clauses become memberships of the answers the engine supplies.
        self.account = defn.options.level == "account"
        if self.account:
            defn = strip_quantifiers(defn)
        self.created_at_ms = created_at_ms
        self.events = defn.events_read()
        self.names = tuple(sorted(self.events))
        self.spans, self.relative = _spans(defn)
        self.horizon = _horizon(defn)
        self.props, self.context = _properties_read(defn)
        self.eligible = frozenset() if internal else frozenset(defn.options.eligible_id_types())
        self.lookback_ms = ir.effective_lookback_seconds(defn) * 1000
        self.historical = defn.options.historical
        self.audience = isinstance(defn, ir.Audience)
        self.id = defn.id  # a SHA-256 per access: computed once
        self.computation_class = defn.computation_class
        self._value = compile_definition(defn)
        self.reads_traits = bool(defn.traits_read() or defn.depends_on() or self.relative)
        self.fast = (not self.account and isinstance(defn, ir.ComputedTrait) and defn.window is None
                     and _static_where(defn.where)
                     and (defn.kind in _FAST_KINDS or (defn.kind == "aggregation" and defn.function in ("min", "max"))))
        #: The value of an eligible profile with no record of any name it reads (memoised lazily;
        #: only for definitions that read no traits, whose value then cannot depend on anything).
        self._empty: tuple[Any] | None = None

    # -- folding -----------------------------------------------------------------------------------
    def in_history(self, t: int, received_at: int) -> bool:
        """Spec 4.5 history rule (as the reference applies it): fixed per event."""
        if received_at >= self.created_at_ms:
            return True
        return self.historical and t > self.created_at_ms - self.lookback_ms

    def fold_fast(self, state: State, rec: Record, now: int) -> bool:
        """Fold one record (in any time order) into a running aggregate; whether the state changed."""
        if not self.in_history(rec[0], rec[2]):
            return False
        if state.agg is None:
            state.agg = _empty_agg()
            changed = True
        else:
            changed = False
        if rec[0] > now:
            state.agg["f"].append(rec)
            return True
        return self._fold_fast(state.agg, rec) or changed

    def _fold_fast(self, agg: dict[str, Any], rec: Record) -> bool:
        t = self.defn
        assert isinstance(t, ir.ComputedTrait)
        if rec[4] != t.event or rec[3] in t.exclude_sources:
            return False
        if t.where is not None and not _matches_static(t.where, rec[5], rec[6]):
            return False
        if t.kind == "event_counter":
            agg["n"] += 1
            return True
        assert t.property is not None
        v = rec[5].get(t.property)
        if v is None:
            return False
        pos = [rec[0], rec[1]]
        if t.kind == "first":
            if agg["x"] is None or pos < agg["x"][0]:
                agg["x"] = [pos, v]
                return True
        elif t.kind == "last":
            if agg["x"] is None or pos > agg["x"][0]:
                agg["x"] = [pos, v]
                return True
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
                    return True
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
            return True
        return False

    # -- evaluation --------------------------------------------------------------------------------
    def eligible_with(self, ids: Identifiers | None) -> bool:
        return ids is None or not self.eligible or any(ids.get(k) for k in self.eligible)

    def evaluate(self, state: State, prof: ProfileState, traits: Mapping[str, Any], eligible: bool,
                 now: int) -> tuple[Any, int | None]:
        """(value at ``now``, due time) of one computation of ``prof``.

        ``eligible``: whether the profile has an identifier of ``self.eligible`` (spec 4.3).
        Records are in (time, offset) order; those after ``now`` do not exist yet, and those
        outside this definition's history rule are skipped (only looked for when some record
        was received before the definition was created).
        """
        if self.fast:
            return self._evaluate_fast(state, eligible, now)
        records = prof.records
        names = self.names
        if not any(records.get(n) for n in names):
            if not eligible:
                return (False if self.audience else None), None
            if not self.reads_traits:
                if self._empty is None:
                    self._empty = (self._value(Ctx(now, traits, {})),)
                return self._empty[0], None
        due = self._due(records, traits, now)
        if not eligible:
            return (False if self.audience else None), due
        restricted = prof.min_received is not None and prof.min_received < self.created_at_ms
        if not restricted and (prof.latest is None or prof.latest <= now):
            return self._value(Ctx(now, traits, records)), due
        visible: Records = {}
        for name in names:
            recs = records.get(name, _NO_RECORDS)
            end = bisect_right(recs, now, key=_TIME)
            view = recs if end == len(recs) else recs[:end]
            if restricted:
                view = [r for r in view if self.in_history(r[0], r[2])]
            visible[name] = view
        return self._value(Ctx(now, traits, visible)), due

    def _evaluate_fast(self, state: State, eligible: bool, now: int) -> tuple[Any, int | None]:
        agg = state.agg
        if agg is None:
            agg = _EMPTY_AGG
        elif agg["f"]:
            ready = [r for r in agg["f"] if r[0] <= now]
            if ready:
                agg["f"] = [r for r in agg["f"] if r[0] > now]
                for r in ready:
                    self._fold_fast(agg, r)
        due = min((r[0] for r in agg["f"]), default=None) if agg["f"] else None
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

    def _due(self, records: Records, traits: Mapping[str, Any], now: int) -> int | None:
        """The earliest record time after ``now`` (a future event arriving) or record time plus a
        span after ``now`` (leaving a window); records are sorted by time, so each is a bisection."""
        best: int | None = None
        spans = self.spans
        for name in self.names:
            recs = records.get(name)
            if not recs:
                continue
            j = bisect_right(recs, now, key=_TIME)
            if j < len(recs) and (best is None or recs[j][0] < best):
                best = recs[j][0]
            for s in spans:
                i = bisect_right(recs, now - s, key=_TIME)  # the first record with t + s > now
                if i < len(recs):
                    c = recs[i][0] + s
                    if best is None or c < best:
                        best = c
        if self.relative:
            moments: set[int] = set()
            collect_dates(traits, moments)
            for name in self.names:
                for r in records.get(name, _NO_RECORDS):
                    collect_dates(r[5], moments)
                    if r[6]:
                        collect_dates(r[6], moments)
            for m in moments:
                for s in self.spans | {0}:
                    for c in (m - s, m - s + 1, m, m + 1, m + s, m + s + 1):
                        if c > now and (best is None or c < best):
                            best = c
        return best


def _empty_agg() -> dict[str, Any]:
    return {"n": 0, "x": None, "u": {}, "f": []}


_EMPTY_AGG = _empty_agg()  # read only: the aggregate of a state nothing was folded into


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
