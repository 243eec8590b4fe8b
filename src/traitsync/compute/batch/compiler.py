"""Definitions (the IR) to ONE dialect-neutral SQL query over the store's tables.

The query reads ``events``, ``profile_events``, ``profiles``, ``profile_traits`` and
``profile_external_ids`` (the store's own tables, or the same names registered over an export)
and returns one row per (computation, profile) that has a value: ``computation_key, pid`` and the
value as the four columns of :mod:`traitsync.compute.batch.typed`. Its meaning is the reference
evaluator's, clause by clause (``compute/reference.py``); ``as_of`` and each definition's creation
time are literals, so one compiled query is one point in time.

Shape (CTEs, in dependency order):

* ``ev``: every visible event (``timestamp <= as_of``) of the names read, on its canonical
  profile, with each property any definition reads extracted ONCE (the shared scan);
* ``base``: every canonical user profile with its eligibility flags and the custom traits read;
* ``agg``: one GROUP BY over ``ev`` holding every count and running aggregate whose filter
  reads only the event itself: definitions reading the same events share this one pass;
* per funnel step, per count or trait whose filter reads other values, and per trait that
  picks one value (first, last, min, max, most frequent, unique list): its own CTE;
* ``v_<n>``: each definition's value per profile, readers after what they read.

Account-level definitions (``level: account``) read more CTEs, only when some are compiled:
``lk`` (each canonical user and every account it is currently linked to, from ``profile_links``),
``aev`` (``ev`` once per account of the event's user: an account's events are the union of its
users' events), ``abase`` (every account profile with the account traits read) and ``aagg``
(``agg`` over ``aev``). The same builders then run with those tables in place of ``ev``, ``base``
and ``agg``, except that counts and sums whose filter reads only the event are summed per user
in ``agg`` and rolled up per account in ``ragg`` (no copy of the events per account). An ``ANY``
/ ``ALL`` clause is a ``q<n>`` CTE: the user-level condition evaluated per linked user (on ``ev``
and ``base``), folded per account with ``MAX`` (any) and ``MIN`` (all).

Dialect differences are only in ``nodes`` and ``dialects/``; nothing here asks for a dialect.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from sqlglot import exp

from traitsync.compute.batch import nodes
from traitsync.compute.batch.errors import UnsupportedConstruct
from traitsync.compute.batch.ranked import rank
from traitsync.compute.batch.typed import (
    FALSE,
    TRUE,
    VALUE_COLUMNS,
    Typed,
    and_,
    case,
    compare,
    decompose,
    double_null,
    lit,
    or_,
    sure,
    text_null,
)
from traitsync.definitions import Definitions, ir

_DERIVED = {("page", "page_name"): "name", ("screen", "screen_name"): "name", ("page", "category"): "category"}


def _col(table: str, name: str) -> exp.Column:
    return exp.column(name, table)


def _select(*cols: exp.Expr) -> exp.Select:
    return exp.Select(expressions=list(cols))


def _alias(e: exp.Expr, name: str) -> exp.Expr:
    return exp.alias_(e, name)


@dataclass
class Hist:
    """The history rule of a top-level definition (None fields: every event counts)."""

    created_at_ms: int | None = None
    historical: bool = True
    lookback_ms: int = 0

    def predicate(self, row: str) -> exp.Expr:
        if self.created_at_ms is None:
            return TRUE
        received = exp.GTE(this=_col(row, "rcv"), expression=lit(self.created_at_ms))
        if not self.historical:
            return received
        return exp.paren(or_(received, exp.GT(this=_col(row, "ts"),
                                                expression=lit(self.created_at_ms - self.lookback_ms))))

    @property
    def tag(self) -> tuple[object, ...]:
        return (self.created_at_ms, self.historical, self.lookback_ms)


NO_HIST = Hist()


@dataclass(frozen=True)
class Level:
    """Whose values a builder computes, and from which tables.

    ``user``: user profiles, eligibility applies. ``member``: a user inside an account's ``ANY`` /
    ``ALL``, where a user-level audience or trait has the value it has on that user, eligibility
    included. ``account``: account profiles (no eligibility: an account is always identified by its
    ``group_id``), over the union of their users' events.
    """

    name: str
    ev: str
    base: str
    agg: str
    eligible: bool


USER = Level("user", "ev", "base", "agg", True)
MEMBER = Level("member", "ev", "base", "agg", True)
ACCOUNT = Level("account", "aev", "abase", "aagg", False)


@dataclass
class _Scan:
    """The joins one row alias needs (traits, funnel counts, other definitions' values)."""

    row: str
    joins: dict[str, tuple[str, exp.Expr]] = field(default_factory=dict)

    def join(self, alias: str, table: str, on: exp.Expr) -> None:
        self.joins.setdefault(alias, (table, on))

    def apply(self, select: exp.Select) -> exp.Select:
        for alias, (table, on) in self.joins.items():
            select = select.join(exp.Table(this=exp.to_identifier(table), alias=exp.TableAlias(
                this=exp.to_identifier(alias))), on=on, join_type="left", copy=False)
        return select


class Compiler:
    """Builds the query for ``keys`` (with what they read) at ``as_of_ms``."""

    def __init__(self, definitions: Definitions, as_of_ms: int, *, created_at: Mapping[str, int] | None = None,
                 keys: Iterable[str] | None = None) -> None:
        self.definitions = definitions
        self.as_of = as_of_ms
        self.created_at = dict(created_at or {})
        wanted = list(definitions.order) if keys is None else list(keys)
        for key in wanted:
            if key not in definitions:
                raise UnsupportedConstruct(f"no computed trait or audience {key!r}")
        needed: set[str] = set()
        todo = list(wanted)
        while todo:
            key = todo.pop()
            if key not in needed:
                needed.add(key)
                todo.extend(definitions.dependencies(key))
        self.keys = tuple(k for k in definitions.order if k in wanted)
        self.order = tuple(k for k in definitions.order if k in needed)
        self.ctes: list[tuple[str, exp.Expr | None]] = []
        self.props: dict[tuple[str, tuple[str, ...]], str] = {}
        self.trait_paths: dict[tuple[str, ...], str] = {}
        self.eligible: dict[tuple[str, ...], str] = {}
        self.agg_cols: dict[str, dict[object, tuple[str, exp.Expr]]] = {"ev": {}, "aev": {}}
        self.rollup: dict[str, str] = {}
        self.level = USER
        self.accounts = False
        self.cache: dict[object, object] = {}
        self.values: dict[tuple[str, object, str], str] = {}
        self._n = 0

    # -- naming ------------------------------------------------------------------------------
    def _name(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}{self._n}"

    def _cte(self, name: str, body: exp.Expr | None) -> str:
        self.ctes.append((name, body))
        return name

    @contextmanager
    def at(self, level: Level) -> Iterator[None]:
        """Build at ``level`` (its tables, its eligibility rule) for the duration of the block."""
        saved = self.level
        self.level = level
        if level is ACCOUNT:
            self.accounts = True
        try:
            yield
        finally:
            self.level = saved

    # -- leaf columns ------------------------------------------------------------------------
    def prop(self, row: str, name: str, scope: str = "properties") -> Typed:
        path = (scope, *_walk_parts(name)) if scope == "context" else ("properties", name)
        key = (scope, path)
        prefix = self.props.get(key)
        if prefix is None:
            prefix = self.props[key] = f"p{len(self.props)}_"
        return Typed.columns(row, prefix)

    def eligibility(self, scan: _Scan, defn: ir.Definition) -> exp.Expr:
        if not self.level.eligible:
            return TRUE
        types = defn.options.eligible_id_types()
        name = self.eligible.get(types)
        if name is None:
            name = self.eligible[types] = f"el{len(self.eligible)}"
        alias = self._base_join(scan)
        return exp.EQ(this=exp.func("COALESCE", _col(alias, name), lit(0)), expression=lit(1))

    def _base_join(self, scan: _Scan) -> str:
        if scan.row == "b":
            return "b"
        alias = f"{scan.row}_b"
        scan.join(alias, self.level.base, exp.EQ(this=_col(alias, "pid"), expression=_col(scan.row, "pid")))
        return alias

    def trait(self, scan: _Scan, key: str) -> Typed:
        """``value_of(key)``: a definition's value (whole history), else the custom trait."""
        if key in self.definitions:
            alias = self.value_join(scan, key)
            return Typed.columns(alias, "")
        parts = tuple(_walk_parts(key))
        prefix = self.trait_paths.get(parts)
        if prefix is None:
            prefix = self.trait_paths[parts] = f"t{len(self.trait_paths)}_"
        return Typed.columns(self._base_join(scan), prefix)

    def value_join(self, scan: _Scan, key: str, hist: Hist = NO_HIST) -> str:
        cte = self.value_cte(key, hist)
        alias = f"{scan.row}_{cte}"
        scan.join(alias, cte, exp.EQ(this=_col(alias, "pid"), expression=_col(scan.row, "pid")))
        return alias

    # -- event-level conditions --------------------------------------------------------------
    def operand(self, scan: _Scan, value: ir.Value, parent: str | None) -> object:
        if isinstance(value, ir.TraitRef):
            return self.trait(scan, value.key)
        if isinstance(value, ir.PropertyRef):
            row = parent if value.parent else scan.row
            if row is None:
                return None
            return self.prop(row, value.name)
        return value

    def matches(self, cond: ir.Condition, scan: _Scan, parent: str | None, hist: Hist) -> exp.Expr:
        row = scan.row
        if isinstance(cond, ir.All):
            return and_(*(self.matches(c, scan, parent, hist) for c in cond.conditions))
        if isinstance(cond, ir.Any):
            return exp.paren(or_(*(self.matches(c, scan, parent, hist) for c in cond.conditions)))
        if isinstance(cond, ir.Not):
            return exp.Not(this=exp.paren(self.matches(cond.condition, scan, parent, hist)))
        if isinstance(cond, ir.PropertyCondition):
            actual = self.prop(row, cond.property, cond.scope)
            return compare(cond.op, actual, self.operand(scan, cond.value, parent), self.as_of)
        if isinstance(cond, ir.Performed) and isinstance(cond.window, ir.ParentWithin):
            cte = self.funnel(cond, hist)
            alias = f"{row}_{cte}"
            on: exp.Expr = exp.EQ(this=_col(alias, "ofs"), expression=_col(row, "ofs"))
            if self.level is ACCOUNT:  # an event is one row per account of its user
                on = and_(on, exp.EQ(this=_col(alias, "pid"), expression=_col(row, "pid")))
            scan.join(alias, cte, on)
            count = exp.func("COALESCE", _col(alias, "n"), lit(0))
            if cond.comparator == "at_least":
                return exp.GTE(this=count, expression=lit(cond.n))
            closed = exp.GTE(this=lit(self.as_of), expression=exp.Add(
                this=_col(row, "ts"), expression=lit(cond.window.seconds * 1000)))
            return exp.paren(and_(closed, _count_holds(cond.comparator, count, cond.n)))
        return self.holds(cond, scan, hist)

    def _simple(self, cond: ir.Condition | None) -> bool:
        """A filter that reads only the event itself (so it can join the shared aggregate)."""
        if cond is None:
            return True
        if isinstance(cond, ir.All | ir.Any):
            return all(self._simple(c) for c in cond.conditions)
        if isinstance(cond, ir.Not):
            return self._simple(cond.condition)
        if isinstance(cond, ir.PropertyCondition):
            return not isinstance(cond.value, ir.TraitRef | ir.PropertyRef) or (
                isinstance(cond.value, ir.PropertyRef) and not cond.value.parent)
        return False

    def qualifying(self, row: str, event: str, where: ir.Condition | None, window: ir.Window | None,
                   exclude: Sequence[str], hist: Hist, parent: str | None = None) -> tuple[exp.Expr, _Scan]:
        """The predicate that an ``ev`` row ``row`` counts for ``event``, and the joins it needs."""
        scan = _Scan(row)
        parts: list[exp.Expr] = [exp.EQ(this=_col(row, "name"), expression=lit(event))]
        if isinstance(window, ir.Within):
            parts.append(exp.GT(this=_col(row, "ts"), expression=lit(self.as_of - window.seconds * 1000)))
        elif isinstance(window, ir.Between):
            parts.append(exp.GT(this=_col(row, "ts"), expression=lit(self.as_of - window.end_seconds * 1000)))
            parts.append(exp.LTE(this=_col(row, "ts"), expression=lit(self.as_of - window.start_seconds * 1000)))
        if exclude:
            parts.append(exp.Not(this=exp.In(this=_col(row, "src"), expressions=[lit(s) for s in exclude])))
        parts.append(hist.predicate(row))
        if where is not None:
            parts.append(self.matches(where, scan, parent, hist))
        return and_(*parts), scan

    # -- counts --------------------------------------------------------------------------------
    def read(self, scan: _Scan, table: str, column: str) -> exp.Expr:
        """``table.column`` for the scan's profile (``table`` is ``agg`` or a CTE keyed by pid)."""
        alias = f"{scan.row}_{table}"
        scan.join(alias, table, exp.EQ(this=_col(alias, "pid"), expression=_col(scan.row, "pid")))
        return _col(alias, column)

    def count(self, cond: ir.Performed, hist: Hist) -> tuple[str, str]:
        """Where this profile's number of qualifying events is: (table, column); no row = 0."""
        pred, qscan = self.qualifying("e", cond.event, cond.where, cond.window, cond.exclude_sources, hist)
        return self.aggregate(("count", cond, hist.tag), {"n": exp.Sum(this=case((pred, lit(1)), default=lit(0)))},
                              qscan, self._simple(cond.where))["n"]

    def aggregate(self, key: object, aggs: Mapping[str, exp.Expr], qscan: _Scan,
                  simple: bool) -> dict[str, tuple[str, str]]:
        """Aggregates over ``ev`` by profile: columns of the shared ``agg`` when the filter reads
        only the event itself (one pass for all such definitions), else a CTE of their own with
        the joins the filter needs. Returns where each aggregate can be read."""
        level = self.level
        if simple and level is ACCOUNT and all(isinstance(a, exp.Sum) for a in aggs.values()):
            # A sum over the account's events is the sum of its users' sums: computed in the
            # users' shared pass and rolled up per account (``ragg``), never copying the events
            # once per account (``aev``).
            rolled_up: dict[str, tuple[str, str]] = {}
            for name, agg in aggs.items():
                users = self.agg_cols["ev"]
                found = users.get((key, name))
                if found is None:
                    found = users[(key, name)] = (f"x{len(users)}", agg)
                rolled = self.rollup.setdefault(found[0], f"y{len(self.rollup)}")
                rolled_up[name] = ("ragg", rolled)
            return rolled_up
        if simple:
            out: dict[str, tuple[str, str]] = {}
            cols = self.agg_cols[level.ev]
            for name, agg in aggs.items():
                found = cols.get((key, name))
                if found is None:
                    found = cols[(key, name)] = (f"x{len(cols)}", agg)
                out[name] = (level.agg, found[0])
            return out
        cte = self.cache.get((level.ev, key))
        if not isinstance(cte, str):
            body = _select(_col("e", "pid"), *(_alias(a, n) for n, a in aggs.items())).from_(f"{level.ev} AS e")
            body = qscan.apply(body).group_by(_col("e", "pid"))
            cte = self._cte(self._name("g"), body)
            self.cache[(level.ev, key)] = cte
        return {name: (cte, name) for name in aggs}

    def funnel(self, step: ir.Performed, hist: Hist) -> str:
        """Per parent event (``ofs``): how many child events satisfy the step (rows only for > 0)."""
        key = ("funnel", self.level.ev, step, hist.tag)
        cte = self.cache.get(key)
        if isinstance(cte, str):
            return cte
        assert isinstance(step.window, ir.ParentWithin)
        name = self._name("f")
        child = f"{name}c"
        pred, scan = self.qualifying(child, step.event, step.where, None, step.exclude_sources, hist, parent="pe")
        span = step.window.seconds * 1000
        on = and_(exp.EQ(this=_col(child, "pid"), expression=_col("pe", "pid")),
                  exp.GT(this=_col(child, "ts"), expression=_col("pe", "ts")),
                  exp.LTE(this=_col(child, "ts"), expression=exp.Add(this=_col("pe", "ts"), expression=lit(span))))
        ev = self.level.ev
        keys = [_col("pe", "ofs")] + ([_col("pe", "pid")] if self.level is ACCOUNT else [])
        body = _select(*(_alias(k, k.name) for k in keys), _alias(exp.Count(this=exp.Star()), "n")).from_(
            f"{ev} AS pe")
        body = body.join(f"{ev} AS {child}", on=on, join_type="inner")
        body = scan.apply(body).where(pred).group_by(*(k.copy() for k in keys))
        self.cache[key] = name
        return self._cte(name, body)

    # -- profile-level conditions ------------------------------------------------------------
    def holds(self, cond: ir.Condition, scan: _Scan, hist: Hist) -> exp.Expr:
        if isinstance(cond, ir.All):
            return and_(*(self.holds(c, scan, hist) for c in cond.conditions))
        if isinstance(cond, ir.Any):
            return exp.paren(or_(*(self.holds(c, scan, hist) for c in cond.conditions)))
        if isinstance(cond, ir.Not):
            return exp.Not(this=exp.paren(self.holds(cond.condition, scan, hist)))
        if isinstance(cond, ir.Performed):
            if isinstance(cond.window, ir.ParentWithin):
                raise UnsupportedConstruct("a funnel step (within parent) outside an event's where")
            count = exp.func("COALESCE", self.read(scan, *self.count(cond, hist)), lit(0))
            return _count_holds(cond.comparator, count, cond.n)
        if isinstance(cond, ir.TraitCondition):
            value = cond.value
            expected: object = self.trait(scan, value.key) if isinstance(value, ir.TraitRef) else (
                None if isinstance(value, ir.PropertyRef) else value)
            return compare(cond.op, self.trait(scan, cond.key), expected, self.as_of)
        if isinstance(cond, ir.InAudience):
            alias = self.value_join(scan, cond.key)
            return sure(exp.EQ(this=_col(alias, "j"), expression=lit("true")))
        if isinstance(cond, ir.Quantified):
            return self.quantified(cond, scan)
        raise UnsupportedConstruct(f"{type(cond).__name__} outside an event's where")

    def quantified(self, cond: ir.Quantified, scan: _Scan) -> exp.Expr:
        """``ANY`` / ``ALL`` of the account's users: ``q<n>(pid, qa, qm)`` per account, the user-level
        condition's MAX (some user holds it) and MIN (every user does) over its linked users; an
        account without users is in neither. The condition sees each user's whole history."""
        if self.level is not ACCOUNT:
            raise UnsupportedConstruct("ANY / ALL only apply to an account's users (level: account, not nested)")
        key = ("quantified", cond.condition)
        cte = self.cache.get(key)
        if not isinstance(cte, str):
            inner = _Scan("b")
            with self.at(MEMBER):
                flag = case((sure(self.holds(cond.condition, inner, NO_HIST)), lit(1)), default=lit(0))
            body = _select(_alias(_col("ql", "pid"), "pid"), _alias(exp.Max(this=flag), "qa"),
                           _alias(exp.Min(this=flag.copy()), "qm")).from_("base AS b").join(
                "lk AS ql", on=exp.EQ(this=_col("ql", "uid"), expression=_col("b", "pid")), join_type="inner")
            body = inner.apply(body).group_by(_col("ql", "pid"))
            cte = self._cte(self._name("q"), body)
            self.cache[key] = cte
        column = "qa" if cond.quantifier == "any" else "qm"
        return exp.EQ(this=exp.func("COALESCE", self.read(scan, cte, column), lit(0)), expression=lit(1))

    # -- values --------------------------------------------------------------------------------
    def value_cte(self, key: str, hist: Hist = NO_HIST) -> str:
        """``v<n>(pid, k, j, n, s)`` for every canonical profile: the definition's value."""
        level = self.level
        found = self.values.get((key, hist.tag, level.name))
        if found is not None:
            return found
        defn = self.definitions[key]
        scan = _Scan("b")
        eligible = self.eligibility(scan, defn)
        if isinstance(defn, ir.Audience):
            member = and_(eligible, self.holds(defn.condition, scan, hist))
            cols = [_alias(lit("b"), "k"),
                    _alias(case((sure(member), lit("true")), default=lit("false")), "j"),
                    _alias(double_null(), "n"), _alias(text_null(), "s")]
        else:
            value = self.trait_value(defn, scan, hist)
            parts = ((value.kind, text_null()), (value.raw, text_null()), (value.num, double_null()),
                     (value.string, text_null()))
            cols = [_alias(x if eligible is TRUE else case((eligible.copy(), x), default=null), name)
                    for (x, null), name in zip(parts, VALUE_COLUMNS, strict=True)]
        body = scan.apply(_select(_col("b", "pid"), *cols).from_(f"{level.base} AS b"))
        name = self._cte(self._name("v"), body)
        self.values[(key, hist.tag, level.name)] = name
        return name

    def trait_value(self, t: ir.ComputedTrait, scan: _Scan, hist: Hist) -> Typed:
        if t.kind == "event_counter":
            cond = ir.Performed(t.event, t.where, "at_least", 1, t.window, t.exclude_sources)
            return _number(exp.func("COALESCE", self.read(scan, *self.count(cond, hist)), lit(0)))
        assert t.property is not None
        simple = self._simple(t.where)
        pred, qscan = self.qualifying("e", t.event, t.where, t.window, t.exclude_sources, hist)
        raw = self.prop("e", t.property)
        pred = and_(pred, raw.present())
        numeric = t.kind == "aggregation" and not (t.function in ("min", "max") and t.value_type == "string")
        if numeric and t.function in ("sum", "avg"):
            return self._sum(t, pred, qscan, raw, simple, scan, hist)
        if t.kind == "unique_list_count":
            distinct = exp.Count(this=exp.Distinct(expressions=[case((pred, raw.text()))]))
            where = self.aggregate(("ulc", t.event, t.property, t.where, t.window, t.exclude_sources, hist.tag),
                                   {"n": distinct}, qscan, simple)
            return _number(exp.func("COALESCE", self.read(scan, *where["n"]), lit(0)))
        return self._ranked(t, pred, qscan, raw, scan, hist)

    def _sum(self, t: ir.ComputedTrait, pred: exp.Expr, qscan: _Scan, raw: Typed, simple: bool,
             scan: _Scan, hist: Hist) -> Typed:
        """Sum and average: a sum of integers stays an exact integer, as in Python."""
        num_pred = and_(pred, raw.is_("n"))
        as_int = nodes.SafeBigint(this=raw.raw.copy())  # NULL unless an integer literal
        aggs = {"sn": exp.Sum(this=case((num_pred, raw.num))),
                "cn": exp.Sum(this=case((num_pred.copy(), lit(1)), default=lit(0))),
                "ci": exp.Sum(this=case((and_(num_pred.copy(), exp.Not(this=exp.Is(this=as_int,
                                                                                    expression=exp.null()))),
                                         lit(1)), default=lit(0))),
                "si": exp.Sum(this=case((num_pred.copy(), as_int.copy())))}
        key = ("sum", t.event, t.property, t.where, t.window, t.exclude_sources, hist.tag)
        cols = {name: self.read(scan, *where) for name, where in self.aggregate(key, aggs, qscan, simple).items()}
        has = exp.GT(this=exp.func("COALESCE", cols["cn"], lit(0)), expression=lit(0))
        if t.function == "sum":
            num: exp.Expr = cols["sn"]
            text = case((exp.EQ(this=cols["ci"], expression=cols["cn"].copy()), exp.cast(cols["si"], "VARCHAR")),
                        default=text_null())
        else:
            num = exp.Div(this=cols["sn"].copy(), expression=exp.cast(cols["cn"].copy(), "DOUBLE"))
            text = text_null()
        return Typed(case((has, lit("n")), default=text_null()), case((has.copy(), text), default=text_null()),
                     case((has.copy(), num), default=double_null()), text_null())

    def _ranked(self, t: ir.ComputedTrait, pred: exp.Expr, qscan: _Scan, raw: Typed, scan: _Scan,
                hist: Hist) -> Typed:
        """Traits that pick one value (or list the distinct ones): a ranking over the qualifying rows."""
        key = ("ranked", self.level.ev, t.kind, t.event, t.property, t.function, t.value_type, t.min_frequency,
               t.where, t.window, t.exclude_sources, hist.tag)
        cte = self.cache.get(key)
        if not isinstance(cte, str):
            cte = self._name("r")
            inner = f"{cte}q"
            cols = [_col("e", "pid"), _alias(_col("e", "ts"), "ts"), _alias(_col("e", "ofs"), "ofs")]
            cols += [_alias(getattr(raw, a), c) for a, c in zip(("kind", "raw", "num", "string"), VALUE_COLUMNS,
                                                                  strict=True)]
            cols.append(_alias(raw.text(), "tx"))
            rows = qscan.apply(_select(*cols).from_(f"{self.level.ev} AS e")).where(pred)
            self._cte(inner, rows)
            self._cte(cte, rank(t, inner))
            self.cache[key] = cte
        return Typed(*(self.read(scan, cte, c) for c in VALUE_COLUMNS))

    # -- the whole query -----------------------------------------------------------------------
    def hist_for(self, defn: ir.Definition) -> Hist:
        created = self.created_at.get(defn.key)
        if created is None:
            return NO_HIST
        return Hist(created, defn.options.historical, ir.effective_lookback_seconds(defn) * 1000)

    def compile(self) -> exp.Select:
        self.ctes = [(name, None) for name in ("ev", "base", "agg", "lk", "ragg", "aev", "abase", "aagg")]
        outputs: list[tuple[str, str]] = []
        for key in self.order:
            with self.at(_level_of(self.definitions[key])):
                self.value_cte(key)
        for key in self.keys:
            defn = self.definitions[key]
            with self.at(_level_of(defn)):
                outputs.append((key, self.value_cte(key, self.hist_for(defn))))
        bodies = {"ev": self._events(), "base": self._base("users"), "agg": self._shared_agg("ev")}
        if self.accounts:
            bodies.update(lk=self._links(), ragg=self._rolled_up(), aev=self._account_events(),
                          abase=self._base("accounts"), aagg=self._shared_agg("aev"))
        else:
            self.ctes = [c for c in self.ctes if c[0] not in ("lk", "ragg", "aev", "abase", "aagg")]
        query: exp.Select | exp.Union | None = None
        for key, cte in outputs:
            part = _select(_alias(lit(key), "computation_key"), exp.column("pid"),
                           *(exp.column(c) for c in VALUE_COLUMNS)).from_(cte).where(and_(
                exp.Not(this=exp.Is(this=exp.column("k"), expression=exp.null())),
                exp.Not(this=exp.paren(and_(exp.EQ(this=exp.column("k"), expression=lit("b")),
                                            exp.EQ(this=exp.column("j"), expression=lit("false")))))))
            query = part if query is None else exp.union(query, part, distinct=False, copy=False)
        assert query is not None
        select = query if isinstance(query, exp.Select) else _select(exp.Star()).from_(query.subquery("u"))
        for name, body in _reachable(select, self.ctes, bodies):
            sql_body = bodies.get(name, body)
            assert sql_body is not None
            select = select.with_(name, as_=sql_body, copy=False)
        # Every CTE is computed once: most are read by several others (``ev`` by all), and an
        # engine that inlines them re-expands each dependency chain per reader, which grew the
        # plan (and the work) exponentially with audience-of-audience references.
        # (A CTE read once is left to the engine to inline: materializing it only adds a copy.)
        readers: dict[str, int] = {}
        for table in select.find_all(exp.Table):
            readers[table.name] = readers.get(table.name, 0) + 1
        # ``ev`` with properties is always computed once: inlined, each property's JSON would be
        # parsed again for every aggregate that reads it (10x the CPU of a sum, measured).
        for cte in select.args["with_"].expressions:
            if readers.get(cte.alias, 0) > 1 or (cte.alias == "ev" and self.props):
                cte.set("materialized", True)
        return select

    def _events(self) -> exp.Expr:
        """``ev``: each body parsed once for every property read, each value split by kind once.

        Three selects: join and parse (``d``), pick each member and its first character (``r``),
        split into the four value columns. Only merged profiles are joined for the canonical id
        (merges are rare; a join with every profile was a third of this CTE's time).
        """
        names = sorted({n for k in self.order for n in self.definitions[k].events_read()})
        e = "e"
        keep = ("pid", "ofs", "name", "src", "ts", "rcv")
        paths: list[tuple[str, ...]] = []

        def index(path: tuple[str, ...]) -> int:
            if path not in paths:
                paths.append(path)
            return paths.index(path)

        def pick(path: tuple[str, ...]) -> exp.Expr:
            return nodes.JsonPick(this=exp.column("doc", "d"), index=lit(index(path)),
                                  expressions=[lit(k) for k in path])

        picks: list[exp.Expr] = [exp.column(c, "d") for c in keep]
        outer: list[exp.Expr] = [exp.column(c, "r") for c in keep]
        for (scope, path), prefix in self.props.items():
            raw: exp.Expr = pick(path)
            if scope == "properties":
                for (kind, prop), member in _DERIVED.items():
                    if prop == path[1]:  # page/screen names (StoredEvent.properties)
                        is_kind = exp.EQ(this=exp.column("type", "d"), expression=lit(kind))
                        raw = exp.func("COALESCE", raw, case((is_kind, pick((member,)))))
            first = exp.func("SUBSTRING", raw.copy(), lit(1), lit(1))
            picks += [_alias(raw, prefix + "r"), _alias(first, prefix + "f")]
            outer += [_alias(x, prefix + suffix) for suffix, x in decompose(exp.column(prefix + "r", "r"),
                                                                            exp.column(prefix + "f", "r"))]
        merged = _select(exp.column("profile_id"), exp.column("merged_into")).from_("profiles").where(
            exp.Not(this=exp.Is(this=exp.column("merged_into"), expression=exp.null())))
        cols: list[exp.Expr] = [
            _alias(exp.func("COALESCE", _col("m", "merged_into"), _col("pe", "profile_id")), "pid"),
            _alias(exp.column("offset", e, quoted=True), "ofs"), _alias(_col(e, "event"), "name"),
            _alias(_col(e, "source_id"), "src"), _alias(_col(e, "timestamp_ms"), "ts"),
            _alias(_col(e, "received_at_ms"), "rcv"), _alias(_col(e, "type"), "type")]
        if paths:
            cols.append(_alias(nodes.JsonDoc(this=_col(e, "body"), expressions=[
                exp.Tuple(expressions=[lit(k) for k in p]) for p in paths]), "doc"))
        on_pe = exp.EQ(this=exp.column("offset", "pe", quoted=True), expression=exp.column("offset", e, quoted=True))
        where = and_(exp.Not(this=exp.Is(this=_col("pe", "profile_id"), expression=exp.null())),
                     exp.LTE(this=_col(e, "timestamp_ms"), expression=lit(self.as_of)),
                     exp.In(this=_col(e, "event"), expressions=[lit(n) for n in names]) if names else FALSE)
        joined = (_select(*cols).from_("events AS e").join("profile_events AS pe", on=on_pe, join_type="inner")
                  .join(merged.subquery("m"), join_type="left",
                        on=exp.EQ(this=_col("m", "profile_id"), expression=_col("pe", "profile_id"))).where(where))
        picked = _select(*picks).from_(joined.subquery("d"))
        return _select(*outer).from_(picked.subquery("r"))

    def _links(self) -> exp.Expr:
        """``lk(uid, pid)``: each canonical user profile and each account it is linked to now."""
        def merged(alias: str) -> exp.Expr:
            return _select(exp.column("profile_id"), exp.column("merged_into")).from_("profiles").where(
                exp.Not(this=exp.Is(this=exp.column("merged_into"), expression=exp.null()))).subquery(alias)

        uid = exp.func("COALESCE", _col("mu", "merged_into"), _col("l", "user_profile_id"))
        pid = exp.func("COALESCE", _col("ma", "merged_into"), _col("l", "account_profile_id"))
        return (_select(_alias(uid, "uid"), _alias(pid, "pid")).distinct().from_("profile_links AS l")
                .join(merged("mu"), on=exp.EQ(this=_col("mu", "profile_id"), expression=_col("l", "user_profile_id")),
                      join_type="left")
                .join(merged("ma"), on=exp.EQ(this=_col("ma", "profile_id"),
                                              expression=_col("l", "account_profile_id")), join_type="left"))

    def _rolled_up(self) -> exp.Expr:
        """``ragg``: per account, the sums of its users' columns of ``agg`` (see :meth:`aggregate`)."""
        cols = [_alias(exp.Sum(this=_col("a", user)), account) for user, account in self.rollup.items()]
        if not cols:
            cols = [_alias(lit(0), "y")]
        return (_select(_alias(_col("l", "pid"), "pid"), *cols).from_("agg AS a")
                .join("lk AS l", on=exp.EQ(this=_col("l", "uid"), expression=_col("a", "pid")), join_type="inner")
                .group_by(_col("l", "pid")))

    def _account_events(self) -> exp.Expr:
        """``aev``: every ``ev`` row once per account its user is linked to, on that account."""
        cols: list[exp.Expr] = [_alias(_col("l", "pid"), "pid")]
        cols += [_col("e", c) for c in ("ofs", "name", "src", "ts", "rcv")]
        cols += [_col("e", prefix + c) for prefix in self.props.values() for c in VALUE_COLUMNS]
        return _select(*cols).from_("ev AS e").join("lk AS l", on=exp.EQ(this=_col("l", "uid"),
                                                                         expression=_col("e", "pid")),
                                                   join_type="inner")

    def _base(self, collection: str) -> exp.Expr:
        users = collection == "users"
        cols: list[exp.Expr] = [_alias(_col("p", "profile_id"), "pid")]
        if users:
            cols += [_alias(_col("i", name), name) for name in self.eligible.values()]
        for parts, prefix in self.trait_paths.items():
            raw: exp.Expr = _col("tr", f"{prefix}v")
            if len(parts) > 1:
                raw = nodes.JsonRaw(this=raw, expressions=[lit(k) for k in parts[1:]])
            else:
                raw = exp.func("NULLIF", raw, lit("null"))
            cols += [_alias(x, prefix + suffix) for suffix, x in decompose(raw)]
        select = _select(*cols).from_("profiles AS p")
        if users and self.eligible:
            flags = [_alias(exp.Max(this=case((exp.In(this=exp.column("id_type"), expressions=[lit(t) for t in types]),
                                              lit(1)), default=lit(0))), name) for types, name in self.eligible.items()]
            ids = _select(exp.column("profile_id"), *flags).from_("profile_external_ids").where(
                exp.EQ(this=exp.column("collection"), expression=lit("users"))).group_by(exp.column("profile_id"))
            select = select.join(ids.subquery("i"), on=exp.EQ(this=_col("i", "profile_id"),
                                                               expression=_col("p", "profile_id")), join_type="left")
        if self.trait_paths:
            tops = {prefix: parts[0] for parts, prefix in self.trait_paths.items()}
            pivot = [_alias(exp.Max(this=case((exp.EQ(this=exp.column("key"), expression=lit(top)),
                                              exp.column("value")))), f"{prefix}v") for prefix, top in tops.items()]
            keep = [exp.Not(this=exp.Is(this=exp.column("value"), expression=exp.null())),
                    exp.In(this=exp.column("key"), expressions=[lit(t) for t in sorted(set(tops.values()))])]
            if not users:  # a few accounts among many users: skip the users' rows before grouping
                own = _select(exp.column("profile_id")).from_("profiles").where(
                    exp.EQ(this=exp.column("collection"), expression=lit(collection)))
                keep.append(exp.In(this=exp.column("profile_id"), query=own.subquery()))
            tr = _select(exp.column("profile_id"), *pivot).from_("profile_traits").where(and_(*keep)).group_by(
                exp.column("profile_id"))
            select = select.join(tr.subquery("tr"), on=exp.EQ(this=_col("tr", "profile_id"),
                                                               expression=_col("p", "profile_id")), join_type="left")
        return select.where(and_(exp.EQ(this=_col("p", "collection"), expression=lit(collection)),
                                 exp.Is(this=_col("p", "merged_into"), expression=exp.null())))

    def _shared_agg(self, ev: str) -> exp.Expr:
        cols = [_alias(agg, name) for name, agg in self.agg_cols[ev].values()]
        if not cols:
            cols = [_alias(lit(0), "x")]
        return _select(_col("e", "pid"), *cols).from_(f"{ev} AS e").group_by(_col("e", "pid"))


def _level_of(defn: ir.Definition) -> Level:
    return ACCOUNT if defn.options.level == "account" else USER


def _reachable(select: exp.Select, ctes: Sequence[tuple[str, exp.Expr | None]],
               bodies: Mapping[str, exp.Expr]) -> list[tuple[str, exp.Expr]]:
    """The CTEs the final select reads, directly or not, in their order: a value computed only as
    a step on the way (a dependency at another level, a value without the history rule) and read
    by nothing is left out, so no engine computes it (Spark caches every step it is given)."""
    named = [(name, bodies.get(name, body)) for name, body in ctes]
    wanted = {t.name for t in select.find_all(exp.Table)}
    for name, body in reversed(named):
        if name in wanted and body is not None:
            wanted |= {t.name for t in body.find_all(exp.Table)}
    out = []
    for name, body in named:
        if name in wanted:
            assert body is not None
            out.append((name, body))
    return out


def _number(n: exp.Expr) -> Typed:
    return Typed(lit("n"), exp.cast(n, "VARCHAR"), exp.cast(n.copy(), "DOUBLE"), text_null())


def _count_holds(comparator: ir.Comparator, count: exp.Expr, n: int) -> exp.Expr:
    if comparator == "at_least":
        return exp.GTE(this=count, expression=lit(n))
    if comparator == "at_most":
        return exp.LTE(this=count, expression=lit(n))
    return exp.EQ(this=count, expression=lit(n))


def _walk_parts(key: str) -> list[str]:
    return [p.replace("\0", ".") for p in key.replace("\\.", "\0").split(".")]


def unsupported(definitions: Definitions, key: str) -> str | None:
    """Why ``key`` (or something it reads) cannot be compiled, or None."""
    try:
        Compiler(definitions, 0, keys=[key]).compile()
    except UnsupportedConstruct as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class BatchQuery:
    """One compiled run: the AST, what it computes, the event names it reads (for pushdown) and
    whether it reads account links."""

    ast: exp.Select
    keys: tuple[str, ...]
    event_names: tuple[str, ...]
    as_of_ms: int
    accounts: bool = False


def compile_definitions(definitions: Definitions, as_of_ms: int, *, created_at: Mapping[str, int] | None = None,
                        keys: Iterable[str] | None = None) -> BatchQuery:
    """The dialect-neutral query computing ``keys`` (default: all) at ``as_of_ms``."""
    compiler = Compiler(definitions, as_of_ms, created_at=created_at, keys=keys)
    ast = compiler.compile()
    names = sorted({n for k in compiler.order for n in definitions[k].events_read()})
    return BatchQuery(ast, compiler.keys, tuple(names), as_of_ms, compiler.accounts)


__all__ = ["VALUE_COLUMNS", "BatchQuery", "Compiler", "compile_definitions", "unsupported"]
