"""JSON values in SQL, and the reference evaluator's comparison rules over them.

A value is carried as four columns: ``k`` its JSON kind (``n`` number, ``s`` string, ``b``
boolean, ``o`` object, ``a`` array; NULL = missing), ``j`` its JSON text, ``n`` the number and
``s`` the string. Splitting the kind out is what lets SQL copy the reference's type-exact rules
(``"1"`` never equals ``1``, booleans are not numbers) on every engine, whatever its JSON type
system. Every predicate built here is two-valued (never NULL), so ``NOT`` means what it says.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlglot import exp

from traitsync.compute.batch import nodes
from traitsync.definitions.durations import parse_instant_ms

TRUE = exp.true()
FALSE = exp.false()


def lit(value: object) -> exp.Expr:
    if value is None:
        return exp.null()
    if isinstance(value, bool):
        return exp.true() if value else exp.false()
    if isinstance(value, int | float):
        return exp.Literal.number(repr(value) if isinstance(value, float) else str(value))
    return exp.Literal.string(str(value))


def text_null() -> exp.Expr:
    return exp.cast(exp.null(), "VARCHAR")


def double_null() -> exp.Expr:
    return exp.cast(exp.null(), "DOUBLE")


def sure(pred: exp.Expr) -> exp.Expr:
    """``COALESCE(pred, FALSE)``: SQL's unknown becomes false, as a missing value does in Python."""
    return exp.func("COALESCE", exp.paren(pred), FALSE)


def and_(*parts: exp.Expr) -> exp.Expr:
    parts = tuple(p for p in parts if p is not TRUE)
    return exp.and_(*parts) if parts else TRUE


def or_(*parts: exp.Expr) -> exp.Expr:
    return exp.or_(*parts) if parts else FALSE


def case(*whens: tuple[exp.Expr, exp.Expr], default: exp.Expr | None = None) -> exp.Expr:
    node = exp.Case()
    for cond, then in whens:
        node = node.when(cond, then)
    return node.else_(default) if default is not None else node


@dataclass(frozen=True)
class Typed:
    """One JSON value as SQL expressions (see the module docstring)."""

    kind: exp.Expr
    raw: exp.Expr
    num: exp.Expr
    string: exp.Expr

    @classmethod
    def columns(cls, table: str, prefix: str) -> Typed:
        return cls(exp.column(f"{prefix}k", table), exp.column(f"{prefix}j", table), exp.column(f"{prefix}n", table),
                   exp.column(f"{prefix}s", table))

    @classmethod
    def literal(cls, value: object) -> Typed:
        if value is None:
            return cls(text_null(), text_null(), double_null(), text_null())
        if isinstance(value, bool):
            return cls(lit("b"), lit("true" if value else "false"), double_null(), text_null())
        if isinstance(value, int | float):
            return cls(lit("n"), lit(json.dumps(value)), lit(float(value)), text_null())
        return cls(lit("s"), lit(json.dumps(value)), double_null(), lit(str(value)))

    def text(self) -> exp.Expr:
        """The reference's ``as_text``: a string itself, anything else its JSON text."""
        return case((exp.EQ(this=self.kind, expression=lit("s")), self.string),
                    (exp.EQ(this=self.kind, expression=lit("n")),
                     exp.func("COALESCE", self.raw, exp.cast(self.num, "VARCHAR"))), default=self.raw)

    def is_(self, kind: str) -> exp.Expr:
        return exp.EQ(this=self.kind, expression=lit(kind))

    def present(self) -> exp.Expr:
        return exp.Not(this=exp.Is(this=self.kind, expression=exp.null()))


def decompose(raw: exp.Expr, first: exp.Expr | None = None) -> list[tuple[str, exp.Expr]]:
    """The four columns of a value held as JSON text (a property, a custom trait), by suffix.

    The kind is read from the first character (valid JSON leaves no doubt: ``t``/``f`` start
    only true/false, and null is already NULL). ``first`` is that character when a previous
    select computed it once; comparisons are spelled as ``=`` chains, never ``IN`` lists, which
    DuckDB plans as joins.
    """
    f = first if first is not None else exp.func("SUBSTRING", raw.copy(), lit(1), lit(1))

    def is_(char: str) -> exp.Expr:
        return exp.EQ(this=f.copy(), expression=lit(char))

    kind = case((exp.Is(this=raw.copy(), expression=exp.null()), text_null()), (is_('"'), lit("s")),
                (or_(is_("t"), is_("f")), lit("b")), (is_("{"), lit("o")), (is_("["), lit("a")), default=lit("n"))
    number = and_(exp.Not(this=exp.Is(this=raw.copy(), expression=exp.null())),
                  *(exp.NEQ(this=f.copy(), expression=lit(c)) for c in '"tf{['))
    num = case((number, nodes.SafeDouble(this=raw.copy())), default=double_null())
    text = case((is_('"'), nodes.JsonUnquote(this=raw.copy())), default=text_null())
    return [("k", kind), ("j", raw.copy()), ("n", num), ("s", text)]


def _equal(a: Typed, b: Typed) -> exp.Expr:
    return or_(and_(a.is_("n"), b.is_("n"), exp.EQ(this=a.num, expression=b.num)),
               and_(a.is_("s"), b.is_("s"), exp.EQ(this=a.string, expression=b.string)),
               and_(exp.In(this=a.kind, expressions=[lit("b"), lit("o"), lit("a")]),
                    exp.EQ(this=a.kind, expression=b.kind), exp.EQ(this=a.raw, expression=b.raw)))


def _equal_literal(a: Typed, value: object) -> exp.Expr:
    if isinstance(value, bool):
        return and_(a.is_("b"), exp.EQ(this=a.raw, expression=lit("true" if value else "false")))
    if isinstance(value, int | float):
        return and_(a.is_("n"), exp.EQ(this=a.num, expression=lit(float(value))))
    if isinstance(value, str):
        return and_(a.is_("s"), exp.EQ(this=a.string, expression=lit(value)))
    return FALSE


_ORDER = {"greater_than": exp.GT, "greater_than_or_equal": exp.GTE, "less_than": exp.LT, "less_than_or_equal": exp.LTE}


def compare(op: str, a: Typed, expected: object, as_of_ms: int) -> exp.Expr:
    """``a <op> expected`` as :func:`traitsync.compute.reference.compare` decides it.

    ``expected`` is a Python literal (or tuple of them) or a :class:`Typed` (a reference).
    """
    if op == "exists":
        return a.present()
    if op == "not_exists":
        return exp.Not(this=a.present())
    ref = expected if isinstance(expected, Typed) else None
    if op == "not_contains":
        return or_(exp.Not(this=a.present()), exp.Not(this=sure(_contains(a, expected))))
    if expected is None:
        return FALSE
    if op == "equals":
        return sure(_equal(a, ref) if ref is not None else _equal_literal(a, expected))
    if op == "not_equals":
        same = _equal(a, ref) if ref is not None else _equal_literal(a, expected)
        known = and_(a.present(), ref.present()) if ref is not None else a.present()
        return sure(and_(known, exp.Not(this=sure(same))))
    if op in _ORDER:
        cls = _ORDER[op]
        if ref is not None:
            return sure(and_(a.is_("n"), ref.is_("n"), cls(this=a.num, expression=ref.num)))
        if not isinstance(expected, int | float) or isinstance(expected, bool):
            return FALSE
        return sure(and_(a.is_("n"), cls(this=a.num, expression=lit(float(expected)))))
    if op == "contains":
        return sure(and_(a.present(), _contains(a, expected)))
    if op in ("starts_with", "ends_with"):
        if ref is not None:
            needle: exp.Expr = ref.string
            size: exp.Expr = exp.Length(this=ref.string)
            guard = ref.is_("s")
        elif isinstance(expected, str):
            needle, size, guard = lit(expected), lit(len(expected)), TRUE
        else:
            return FALSE
        side = "LEFT" if op == "starts_with" else "RIGHT"
        return sure(and_(a.is_("s"), guard, exp.EQ(this=exp.func(side, a.string, size), expression=needle)))
    if op in ("one_of", "none_of"):
        options = expected if isinstance(expected, tuple) else (expected,)
        hit = sure(or_(*(_equal_literal(a, v) for v in options))) if ref is None else sure(_equal(a, ref))
        return hit if op == "one_of" else sure(and_(a.present(), exp.Not(this=hit)))
    moment = nodes.IsoMs(this=a.string)
    if op in ("before_date", "after_date"):
        limit = parse_instant_ms(expected)
        if limit is None:
            return FALSE
        cls2 = exp.LT if op == "before_date" else exp.GT
        return sure(and_(a.is_("s"), cls2(this=moment, expression=lit(limit))))
    if not isinstance(expected, int) or isinstance(expected, bool):
        return FALSE
    span = expected * 1000
    bounds = {"within_last": (as_of_ms - span, as_of_ms), "within_next": (as_of_ms, as_of_ms + span),
              "before_last": (None, as_of_ms - span), "after_next": (as_of_ms + span, None)}[op]
    checks = [a.is_("s")]
    if bounds[0] is not None:
        checks.append(exp.GTE(this=moment.copy(), expression=lit(bounds[0])))
    if bounds[1] is not None:
        checks.append(exp.LTE(this=moment.copy(), expression=lit(bounds[1])))
    return sure(and_(*checks))


def _contains(a: Typed, expected: object) -> exp.Expr:
    if isinstance(expected, Typed):
        needles: list[exp.Expr] = [expected.string]
        guard: exp.Expr = expected.is_("s")
    else:
        values = expected if isinstance(expected, tuple) else (expected,)
        needles = [lit(v) for v in values if isinstance(v, str)]
        guard = TRUE
    text = a.text()
    found = or_(*(exp.GT(this=exp.StrPosition(this=text.copy(), substr=n), expression=lit(0)) for n in needles))
    return and_(guard, found)
