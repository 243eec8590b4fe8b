"""The internal representation (IR) of computed traits and audiences.

Both front ends (YAML, Query Language) produce these nodes and both engines (realtime, SQL
batch) consume them, so the IR is the single meaning of a definition. Nodes are frozen and
hashable: two definitions mean the same thing exactly when their IR compares equal, which is
what the YAML/Query Language parity tests and ``ir_to_dict`` round trips rely on.

Every node answers three questions the realtime engine asks when an event or a trait change
arrives: which event names it reads (``events_read``), which profile trait keys it reads
(``traits_read``), and which keys of other computations it may read (``depends_on``; custom
trait keys are included because a node cannot tell them apart, and
:class:`traitsync.definitions.Definitions` narrows them to defined computations).
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass, field
from typing import Literal, TypeAlias

Comparator: TypeAlias = Literal["at_least", "at_most", "exactly"]
TraitKind: TypeAlias = Literal[
    "event_counter", "aggregation", "most_frequent", "first", "last", "unique_list", "unique_list_count"
]
AggregateFunction: TypeAlias = Literal["sum", "avg", "min", "max"]
Level: TypeAlias = Literal["user", "account"]
Quantifier: TypeAlias = Literal["any", "all"]
Scalar: TypeAlias = str | int | float | bool
_EMPTY: frozenset[str] = frozenset()

#: The identifiers that make a profile eligible when anonymous profiles are excluded (spec 4.3).
DEFAULT_ELIGIBLE_IDS: tuple[str, ...] = ("user_id", "email", "android.idfa", "ios.idfa")
#: The identifier of account profiles (``group`` calls' ``groupId``): what makes an account eligible.
ACCOUNT_ELIGIBLE_IDS: tuple[str, ...] = ("group_id",)


def computation_id(prefix: str, key: str) -> str:
    """``tra_``/``aud_`` plus 16 hex digits of SHA-256(key): stable across restarts and hosts.

    Payloads carry it as ``context.personas.computation_id``; since keys are immutable and
    never reused (spec 4.7), hashing the key alone keeps it stable without storing a counter.
    """
    return f"{prefix}_{hashlib.sha256(key.encode('utf-8')).hexdigest()[:16]}"


# --- windows --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Within:
    """Events with ``timestamp > as_of - seconds`` (and not after ``as_of``)."""

    seconds: int


@dataclass(frozen=True, slots=True)
class Between:
    """Events with ``as_of - end_seconds < timestamp <= as_of - start_seconds`` ("N to M ago")."""

    start_seconds: int
    end_seconds: int


@dataclass(frozen=True, slots=True)
class ParentWithin:
    """Funnel child window: ``parent.timestamp < timestamp <= parent.timestamp + seconds``."""

    seconds: int


Window: TypeAlias = Within | Between | ParentWithin


def window_durations(window: Window | None) -> tuple[int, ...]:
    """The durations at which a window edge can move past an event (for due times)."""
    if isinstance(window, Within | ParentWithin):
        return (window.seconds,)
    if isinstance(window, Between):
        return (window.start_seconds, window.end_seconds)
    return ()


# --- operands --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PropertyRef:
    """A dynamic value: this event's property, or the funnel parent's (``property(parent: ...)``)."""

    name: str
    parent: bool = False


@dataclass(frozen=True, slots=True)
class TraitRef:
    """A dynamic value: the profile's trait (custom or computed) ``key``."""

    key: str


Reference: TypeAlias = PropertyRef | TraitRef
#: A comparison value: a literal, a tuple of literals (``one_of``...), whole seconds for the
#: relative date operators, a reference, or None for ``exists``/``not_exists``.
Value: TypeAlias = Scalar | tuple[Scalar, ...] | Reference | None


def _value_traits(value: Value) -> frozenset[str]:
    return frozenset({value.key}) if isinstance(value, TraitRef) else _EMPTY


# --- conditions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Junction:
    """``All`` and ``Any`` read what their members read; only their meaning differs.

    Dataclass equality compares the class too, so ``All(x) != Any(x)``.
    """

    conditions: tuple[Condition, ...]

    def events_read(self) -> frozenset[str]:
        return frozenset().union(*(c.events_read() for c in self.conditions))

    def traits_read(self) -> frozenset[str]:
        return frozenset().union(*(c.traits_read() for c in self.conditions))

    def depends_on(self) -> frozenset[str]:
        return frozenset().union(*(c.depends_on() for c in self.conditions))


@dataclass(frozen=True, slots=True)
class All(_Junction):
    """Every member condition holds."""


@dataclass(frozen=True, slots=True)
class Any(_Junction):
    """At least one member condition holds."""


@dataclass(frozen=True, slots=True)
class Not:
    condition: Condition

    def events_read(self) -> frozenset[str]:
        return self.condition.events_read()

    def traits_read(self) -> frozenset[str]:
        return self.condition.traits_read()

    def depends_on(self) -> frozenset[str]:
        return self.condition.depends_on()


@dataclass(frozen=True, slots=True)
class PropertyCondition:
    """A filter on one event: ``property <op> value``.

    ``scope="context"`` reads ``context.<dotted path>`` (Query Language ``context('page.url')``);
    otherwise ``property`` names a top-level property literally (spec 4.1: only top-level event
    properties can be filtered), dots included.
    """

    property: str
    op: str
    value: Value = None
    scope: Literal["properties", "context"] = "properties"

    def events_read(self) -> frozenset[str]:
        return _EMPTY

    def traits_read(self) -> frozenset[str]:
        return _value_traits(self.value)

    def depends_on(self) -> frozenset[str]:
        return _value_traits(self.value)


@dataclass(frozen=True, slots=True)
class Performed:
    """Counted events: ``event`` matching ``where`` inside ``window``, compared with ``n``.

    Inside another event's ``where`` with a :class:`ParentWithin` window this is a funnel step
    ("and then did" = ``at_least 1``, "and then did not" = ``exactly 0``).
    """

    event: str
    where: Condition | None = None
    comparator: Comparator = "at_least"
    n: int = 1
    window: Window | None = None
    exclude_sources: tuple[str, ...] = ()

    def events_read(self) -> frozenset[str]:
        inner = self.where.events_read() if self.where is not None else _EMPTY
        return inner | {self.event}

    def traits_read(self) -> frozenset[str]:
        return self.where.traits_read() if self.where is not None else _EMPTY

    def depends_on(self) -> frozenset[str]:
        return self.where.depends_on() if self.where is not None else _EMPTY


@dataclass(frozen=True, slots=True)
class TraitCondition:
    """``trait <op> value`` on the profile's current traits (spec 4.5: lookback never applies).

    ``key`` may name a custom trait, a computed trait or an audience (whose value is its
    membership boolean); a dot walks into nested objects and ``\\.`` is a literal dot. With
    ``computed=True`` (YAML ``computed_trait:``) the key must name a defined computed trait.
    """

    key: str
    op: str
    value: Value = None
    computed: bool = False

    def events_read(self) -> frozenset[str]:
        return _EMPTY

    def traits_read(self) -> frozenset[str]:
        return frozenset({self.key}) | _value_traits(self.value)

    def depends_on(self) -> frozenset[str]:
        return self.traits_read()


@dataclass(frozen=True, slots=True)
class InAudience:
    """Membership of another audience ("Part of an Audience"); "not in" is ``Not(InAudience)``."""

    key: str

    def events_read(self) -> frozenset[str]:
        return _EMPTY

    def traits_read(self) -> frozenset[str]:
        return _EMPTY

    def depends_on(self) -> frozenset[str]:
        return frozenset({self.key})


@dataclass(frozen=True, slots=True)
class Quantified:
    """Account level: ``any`` / ``all`` of the account's users satisfy ``condition`` (spec 4.6).

    "None of the users" is ``Quantified("all", Not(...))``, as the Query Language's ``ALL NOT``.
    """

    quantifier: Quantifier
    condition: Condition

    def events_read(self) -> frozenset[str]:
        return self.condition.events_read()

    def traits_read(self) -> frozenset[str]:
        return self.condition.traits_read()

    def depends_on(self) -> frozenset[str]:
        return self.condition.depends_on()


Condition: TypeAlias = (All | Any | Not | PropertyCondition | Performed | TraitCondition | InAudience
                         | Quantified)


# --- definitions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Options:
    """Options shared by traits and audiences (Public API ``options``, spec 4.3 and 4.5).

    ``lookback_seconds`` limits how far before creation history is read when ``historical`` is
    on; None means the spec default (the largest event window in the definition, or 7 days),
    which :meth:`effective_lookback_seconds` works out.
    """

    historical: bool = True
    lookback_seconds: int | None = None
    include_anonymous: bool = False
    level: Level = "user"

    def eligible_id_types(self) -> tuple[str, ...]:
        """The identifier types that make a profile eligible: ``group_id`` for an account-level
        definition (every account has one; ``include_anonymous`` does not apply to accounts)."""
        if self.level == "account":
            return ACCOUNT_ELIGIBLE_IDS
        if self.include_anonymous:
            return (*DEFAULT_ELIGIBLE_IDS, "anonymous_id")
        return DEFAULT_ELIGIBLE_IDS


@dataclass(frozen=True, slots=True)
class ComputedTrait:
    """One computed trait (spec 3.1). Fields that a kind does not use keep their defaults.

    ``property`` is required by every kind but ``event_counter``; ``function`` only by
    ``aggregation``; ``min_frequency`` only matters to ``most_frequent``; ``value_type`` is the
    Query Language's ``min/max(... as string)`` (lexicographic instead of numeric order).
    """

    key: str
    kind: TraitKind
    event: str
    property: str | None = None
    function: AggregateFunction | None = None
    where: Condition | None = None
    window: Window | None = None
    min_frequency: int = 2
    value_type: Literal["number", "string"] = "number"
    exclude_sources: tuple[str, ...] = ()
    name: str | None = None
    options: Options = field(default_factory=Options)

    @builtins.property
    def id(self) -> str:
        return computation_id("tra", self.key)

    @builtins.property
    def computation_class(self) -> str:
        return "trait"

    def events_read(self) -> frozenset[str]:
        inner = self.where.events_read() if self.where is not None else _EMPTY
        return inner | {self.event}

    def traits_read(self) -> frozenset[str]:
        return self.where.traits_read() if self.where is not None else _EMPTY

    def depends_on(self) -> frozenset[str]:
        return self.where.depends_on() if self.where is not None else _EMPTY

    def largest_window_seconds(self) -> int | None:
        sizes = [*window_durations(self.window), *_condition_windows(self.where)]
        return max(sizes) if sizes else None


@dataclass(frozen=True, slots=True)
class Audience:
    """One audience: a boolean condition over a profile (spec 4.1)."""

    key: str
    condition: Condition
    name: str | None = None
    options: Options = field(default_factory=Options)

    @builtins.property
    def id(self) -> str:
        return computation_id("aud", self.key)

    @builtins.property
    def computation_class(self) -> str:
        return "audience"

    def events_read(self) -> frozenset[str]:
        return self.condition.events_read()

    def traits_read(self) -> frozenset[str]:
        return self.condition.traits_read()

    def depends_on(self) -> frozenset[str]:
        return self.condition.depends_on()

    def largest_window_seconds(self) -> int | None:
        sizes = _condition_windows(self.condition)
        return max(sizes) if sizes else None


Definition: TypeAlias = ComputedTrait | Audience


def effective_lookback_seconds(defn: Definition) -> int:
    """Spec 4.5: the configured lookback, else the largest event window, else 7 days."""
    if defn.options.lookback_seconds is not None:
        return defn.options.lookback_seconds
    largest = defn.largest_window_seconds()
    return largest if largest is not None else 7 * 86400


def _condition_windows(cond: Condition | None) -> list[int]:
    if cond is None:
        return []
    if isinstance(cond, All | Any):
        return [s for c in cond.conditions for s in _condition_windows(c)]
    if isinstance(cond, Not | Quantified):
        return _condition_windows(cond.condition)
    if isinstance(cond, Performed):
        own = [] if isinstance(cond.window, ParentWithin) else list(window_durations(cond.window))
        return own + _condition_windows(cond.where)
    return []


def iter_conditions(cond: Condition | None) -> list[Condition]:
    """Every node of a condition tree, parents before children (for checks and due times)."""
    if cond is None:
        return []
    out: list[Condition] = [cond]
    if isinstance(cond, All | Any):
        for c in cond.conditions:
            out.extend(iter_conditions(c))
    elif isinstance(cond, Not | Quantified):
        out.extend(iter_conditions(cond.condition))
    elif isinstance(cond, Performed):
        out.extend(iter_conditions(cond.where))
    return out


# --- journeys --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StepRule:
    """What makes a journey step more than an audience (Journeys v1).

    A step's ``condition`` is evaluated like any audience's; the rule adds what an audience
    cannot say on its own: the user must have joined a parent step at least ``wait_seconds``
    ago, membership is sticky (users only move forward), and the whole journey instance ends
    together ``exit_after_seconds`` after the entry (then may start again after
    ``reenter_after_seconds``). ``sibling`` makes a true/false branch exclusive of the other
    once either is joined; ``bucket`` is a randomised branch's share ``[lo, hi)`` of ``of``.
    """

    journey: str
    step: str
    parents: tuple[str, ...] = ()
    wait_seconds: int = 0
    exit_after_seconds: int | None = None
    reenter_after_seconds: int | None = None
    sibling: str | None = None
    bucket: tuple[int, int] | None = None
    of: int = 100

    @builtins.property
    def is_entry(self) -> bool:
        return not self.parents


@dataclass(frozen=True, slots=True)
class JourneyStep(Audience):
    """A journey step: an audience (key ``j_o_<journey>__<step>_<suffix>``) with its :class:`StepRule`.

    It is an :class:`Audience` so that everything downstream (registry, Profile API, preview,
    activation payloads) treats it as one; only the realtime engine reads ``rule``.
    """

    rule: StepRule = field(kw_only=True)
