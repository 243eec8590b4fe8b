"""Segment's Query Language (spec 4.8) -> IR, so a ``query:`` copied from a Segment export works.

The lark grammar (``query_language.lark``) only knows the shape of chains and junctions; this
module gives the chains their meaning (which call may follow which, what a count comparison
becomes) because that is where an error can say "``sum()`` cannot be compared in an audience"
at the right column instead of listing tokens.

Deviations, each an error rather than a silent approximation: ``expires_after`` (session
windows) and ``entity()`` are not supported; in an audience only ``count()`` may be compared
(compare ``trait('key')`` of a computed trait for sums or averages); ``between`` cannot be
relative to a funnel parent. ``ANY`` / ``ALL`` / ``ALL NOT`` / ``NONE`` (an account's users) prefix
one operand anywhere in an account-level condition, as Segment allows, but do not nest.
Additions: ``audience('key')`` is a membership condition, ``NONE x`` is ``ALL NOT x``, and
``&&``, ``||``, ``!`` are synonyms of ``AND``, ``OR``, ``NOT``. ``mode(p as array, ...)`` and
``as number`` on ``mode`` are accepted and change nothing (spec 4.8: they behave as strings).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import cast

from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken
from lark.lexer import PatternStr

from traitsync.definitions import ir
from traitsync.definitions.durations import QL_UNIT_SECONDS
from traitsync.definitions.operators import TUPLE_VALUED, operator_value_error

_GRAMMAR = Path(__file__).with_name("query_language.lark")

#: Comparator calls and symbols -> canonical operator names.
_COMPARATOR_CALLS = {
    "equals": "equals", "differs": "not_equals", "absent": "not_exists", "exists": "exists",
    "greater_than": "greater_than", "at_least": "greater_than_or_equal", "less_than": "less_than",
    "at_most": "less_than_or_equal", "contains": "contains", "omits": "not_contains",
    "starts_with": "starts_with", "ends_with": "ends_with", "one_of": "one_of", "none_of": "none_of",
    "before_date": "before_date", "after_date": "after_date", "within_last": "within_last",
    "within_next": "within_next", "before_last": "before_last", "after_next": "after_next",
}
_SYMBOLS = {"=": "equals", "==": "equals", "!=": "not_equals", ">": "greater_than",
            ">=": "greater_than_or_equal", "<": "less_than", "<=": "less_than_or_equal"}
_STREAM_FILTERS = ("where", "within", "between", "sources", "expires_after")
_REDUCERS = ("count", "sum", "avg", "max", "min", "mode", "first", "last", "unique")
_FRIENDLY = {"NAME": "a function name", "STRING": "a string", "NUMBER": "a number",
             "UNIT": "a time unit (seconds, minutes, hours, days)",
             "CMP": "a comparison (=, !=, >, >=, <, <=)",
             "$END": "the end of the query"}


class QueryError(Exception):
    """A query that cannot be parsed or means nothing; ``column`` is 1-based within the query."""

    def __init__(self, detail: str, column: int) -> None:
        self.detail = detail
        self.column = column
        self.message = f"column {column}: {detail}"
        super().__init__(self.message)


@lru_cache(maxsize=1)
def _parser() -> Lark:
    return Lark(_GRAMMAR.read_text(encoding="utf-8"), parser="lalr", propagate_positions=True,
                maybe_placeholders=False)


def _describe(names: set[str] | frozenset[str]) -> str:
    parser = _parser()
    shown: set[str] = set()
    for name in names:
        if name in _FRIENDLY:
            shown.add(_FRIENDLY[name])
            continue
        try:
            pattern = parser.get_terminal(name).pattern
        except KeyError:
            shown.add(name)
            continue
        shown.add(f"'{pattern.value}'" if isinstance(pattern, PatternStr) else name.lower())
    return ", ".join(sorted(shown))


def _syntax_error(text: str, exc: UnexpectedInput) -> QueryError:
    if isinstance(exc, UnexpectedCharacters):
        return QueryError(f"unexpected character {text[exc.pos_in_stream or 0]!r}; expected "
                          f"{_describe(exc.allowed)}", exc.column)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        if token.type == "$END":
            return QueryError(f"the query ends early; expected {_describe(exc.expected)}", len(text) + 1)
        return QueryError(f"unexpected {str(token)!r}; expected {_describe(exc.expected)}",
                          token.column or 1)
    if isinstance(exc, UnexpectedEOF):
        return QueryError(f"the query ends early; expected {_describe(set(exc.expected))}", len(text) + 1)
    return QueryError(str(exc), getattr(exc, "column", 1) or 1)


def _parse(text: str) -> Tree[Token]:
    try:
        return _parser().parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, exc) from None


# --- chains ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Call:
    name: str
    args: tuple[Tree[Token] | Token, ...]
    column: int


def _col(node: Tree[Token] | Token) -> int:
    if isinstance(node, Token):
        return node.column or 1
    return getattr(node.meta, "column", 1) or 1


def _calls(chain: Tree[Token]) -> list[_Call]:
    out: list[_Call] = []
    for call in chain.children:
        assert isinstance(call, Tree)
        name = cast(Token, call.children[0])
        args: tuple[Tree[Token] | Token, ...] = ()
        if len(call.children) > 1:
            args_tree = cast(Tree[Token], call.children[1])
            args = tuple(args_tree.children)
        out.append(_Call(str(name), args, name.column or 1))
    return out


def _string(node: Tree[Token] | Token, what: str) -> str:
    if isinstance(node, Tree) and node.data == "string":
        return _unquote(cast(Token, node.children[0]))
    raise QueryError(f"{what} needs a quoted string", _col(node))


def _unquote(token: Token) -> str:
    """Only quotes are unescaped: ``\\.`` must reach trait paths intact (a literal dot, spec 4.8)."""
    body = str(token)[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        if body[i] == "\\" and i + 1 < len(body) and body[i + 1] in "'\"":
            out.append(body[i + 1])
            i += 2
        else:
            out.append(body[i])
            i += 1
    return "".join(out)


def _literal(node: Tree[Token] | Token) -> ir.Scalar | None:
    if not isinstance(node, Tree):
        return None
    if node.data == "string":
        return _unquote(cast(Token, node.children[0]))
    if node.data == "number":
        text = str(node.children[0])
        return float(text) if any(c in text for c in ".eE") else int(text)
    if node.data == "true":
        return True
    if node.data == "false":
        return False
    if node.data == "chain":
        calls = _calls(node)
        if len(calls) == 1 and calls[0].name == "literal" and len(calls[0].args) == 1:
            return _literal(calls[0].args[0])
    return None


def _duration(node: Tree[Token] | Token) -> int:
    if isinstance(node, Tree) and node.data == "duration":
        number, unit = (str(c) for c in node.children)
        if not number.isdigit() or int(number) <= 0:
            raise QueryError("a duration needs a whole number above 0", _col(node))
        return int(number) * QL_UNIT_SECONDS[unit]
    raise QueryError("expected a duration such as 30 days", _col(node))


def _named(node: Tree[Token] | Token, name: str) -> Tree[Token] | Token | None:
    if isinstance(node, Tree) and node.data == "named":
        key = str(node.children[0])
        if key != name:
            raise QueryError(f"unexpected argument name {key!r}", _col(node))
        return node.children[1]
    return None


def _arity(call: _Call, low: int, high: int) -> None:
    if not low <= len(call.args) <= high:
        want = str(low) if low == high else f"{low} to {high}"
        raise QueryError(f"{call.name}() takes {want} argument{'s' if high != 1 else ''}", call.column)


# --- streams --------------------------------------------------------------------------------


@dataclass
class _Stream:
    event: str
    where: list[ir.Condition]
    window: ir.Window | None
    exclude_sources: tuple[str, ...]
    rest: list[_Call]


def _stream(calls: list[_Call], *, funnel: bool) -> _Stream:
    head = calls[0]
    _arity(head, 1, 1)
    stream = _Stream(_string(head.args[0], "event()"), [], None, (), [])
    i = 1
    while i < len(calls) and calls[i].name in _STREAM_FILTERS:
        call = calls[i]
        if call.name == "where":
            _arity(call, 1, 1)
            stream.where.append(_condition(call.args[0], event_scope=True))
        elif call.name in ("within", "between"):
            if stream.window is not None:
                raise QueryError("only one within() or between() per event", call.column)
            stream.window = _window(call, funnel=funnel)
        elif call.name == "sources":
            stream.exclude_sources = _sources(call)
        else:
            raise QueryError("expires_after() (session windows) is not supported", call.column)
        i += 1
    if funnel and not isinstance(stream.window, ir.ParentWithin):
        raise QueryError("an event inside where() is a funnel step and needs within(parent: N days)",
                         head.column)
    stream.rest = calls[i:]
    if not stream.rest:
        raise QueryError(f"event() needs a reducer such as count(); expected one of {', '.join(_REDUCERS)}",
                         calls[-1].column)
    if stream.rest[0].name not in _REDUCERS:
        raise QueryError(f"{stream.rest[0].name}() cannot follow event(); expected one of "
                         f"{', '.join(_STREAM_FILTERS + _REDUCERS)}", stream.rest[0].column)
    return stream


def _window(call: _Call, *, funnel: bool) -> ir.Window:
    if call.name == "within":
        _arity(call, 1, 1)
        parent = _named(call.args[0], "parent")
        if parent is not None:
            if not funnel:
                raise QueryError("within(parent: ...) is only valid for an event inside where()", call.column)
            return ir.ParentWithin(_duration(parent))
        if funnel:
            raise QueryError("a funnel step needs within(parent: N days)", call.column)
        return ir.Within(_duration(call.args[0]))
    _arity(call, 2, 2)
    if funnel:
        raise QueryError("between() cannot be relative to a funnel parent", call.column)
    start, end = _duration(call.args[0]), _duration(call.args[1])
    if start >= end:
        raise QueryError("between(N, M) needs N shorter than M", call.column)
    return ir.Between(start, end)


def _sources(call: _Call) -> tuple[str, ...]:
    if not call.args:
        raise QueryError("sources() needs exclude: followed by source ids", call.column)
    first = _named(call.args[0], "exclude")
    if first is None:
        raise QueryError("sources() needs exclude: followed by source ids", call.column)
    return (_string(first, "sources()"), *(_string(a, "sources()") for a in call.args[1:]))


def _property_arg(node: Tree[Token] | Token, reducer: str) -> tuple[str, str | None]:
    """``property('p')`` or ``property('p') as string`` -> (name, type)."""
    kind: str | None = None
    if isinstance(node, Tree) and node.data == "typed":
        kind = str(node.children[1])
        node = node.children[0]
    if isinstance(node, Tree) and node.data == "chain":
        calls = _calls(node)
        if len(calls) == 1 and calls[0].name == "property" and len(calls[0].args) == 1:
            return _string(calls[0].args[0], "property()"), kind
    raise QueryError(f"{reducer}() needs property('name')", _col(node))


# --- conditions -----------------------------------------------------------------------------


def _value(node: Tree[Token] | Token, op: str) -> tuple[ir.Value, bool]:
    """A comparison value and whether it is a reference."""
    literal = _literal(node)
    if literal is not None:
        return literal, False
    if isinstance(node, Tree) and node.data == "chain":
        calls = _calls(node)
        if len(calls) == 1 and len(calls[0].args) == 1:
            call = calls[0]
            if call.name == "trait":
                return ir.TraitRef(_string(call.args[0], "trait()")), True
            if call.name == "property":
                parent = _named(call.args[0], "parent")
                if parent is not None:
                    return ir.PropertyRef(_string(parent, "property()"), parent=True), True
                return ir.PropertyRef(_string(call.args[0], "property()")), True
    raise QueryError(f"{op} needs a literal value, trait('key') or property('name')", _col(node))


def _comparator_call(call: _Call) -> tuple[str, ir.Value, bool]:
    op = _COMPARATOR_CALLS.get(call.name)
    if op is None:
        raise QueryError(f"{call.name}() is not a comparison; expected one of "
                         f"{', '.join(sorted(_COMPARATOR_CALLS))}", call.column)
    if op in ("exists", "not_exists"):
        _arity(call, 0, 0)
        return op, None, False
    if op in ("within_last", "within_next", "before_last", "after_next"):
        _arity(call, 1, 1)
        return op, _duration(call.args[0]), False
    if op in TUPLE_VALUED:
        if not call.args:
            raise QueryError(f"{call.name}() needs at least one value", call.column)
        values: list[ir.Scalar] = []
        for arg in call.args:
            item = _literal(arg)
            if item is None:
                raise QueryError(f"{call.name}() takes literal values", _col(arg))
            values.append(item)
        return op, tuple(values), False
    _arity(call, 1, 1)
    value, is_ref = _value(call.args[0], op)
    return op, value, is_ref


def _check(op: str, value: ir.Value, is_ref: bool, column: int) -> None:
    problem = operator_value_error(op, value, is_reference=is_ref)
    if problem is not None:
        raise QueryError(problem, column)


def _count_condition(stream: _Stream, op: str, value: ir.Value, column: int) -> ir.Condition:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise QueryError("count() is compared with a whole number, 0 or more", column)
    comparator: ir.Comparator
    if op == "equals" or op == "not_equals":
        comparator, n = "exactly", value
    elif op == "greater_than_or_equal":
        comparator, n = "at_least", value
    elif op == "greater_than":
        comparator, n = "at_least", value + 1
    elif op == "less_than_or_equal":
        comparator, n = "at_most", value
    elif op == "less_than" and value > 0:
        comparator, n = "at_most", value - 1
    else:
        raise QueryError(f"count() cannot be compared with {op} {value}", column)
    where = None if not stream.where else (stream.where[0] if len(stream.where) == 1
                                           else ir.All(tuple(stream.where)))
    performed = ir.Performed(stream.event, where, comparator, n, stream.window, stream.exclude_sources)
    return ir.Not(performed) if op == "not_equals" else performed


def _chain_condition(calls: list[_Call], cmp: tuple[str, Tree[Token] | Token] | None,
                     *, event_scope: bool) -> ir.Condition:
    head = calls[0]
    if head.name == "audience":
        _arity(head, 1, 1)
        if len(calls) > 1 or cmp is not None:
            raise QueryError("audience('key') is a condition on its own", head.column)
        return ir.InAudience(_string(head.args[0], "audience()"))
    if cmp is not None:
        body = calls
        op = _SYMBOLS[cmp[0]]
        value, is_ref = _value(cmp[1], op)
        column = _col(cmp[1])
    else:
        body, last = calls[:-1], calls[-1]
        if not body:
            raise QueryError(f"{head.name}() needs a comparison such as = or .exists()", head.column)
        op, value, is_ref = _comparator_call(last)
        column = last.column
    if head.name == "event":
        stream = _stream(body, funnel=event_scope)
        if [c.name for c in stream.rest] != ["count"]:
            bad = stream.rest[0] if stream.rest[0].name != "count" else stream.rest[-1]
            raise QueryError(f"only count() can be compared in an audience; define a computed trait "
                             f"and compare trait('key') instead of {bad.name}()", bad.column)
        _arity(stream.rest[0], 0, 0)
        return _count_condition(stream, op, value, column)
    if len(body) != 1:
        raise QueryError(f"{body[1].name}() cannot follow {head.name}()", body[1].column)
    _arity(head, 1, 1)
    _check(op, value, is_ref, column)
    if head.name == "trait":
        return ir.TraitCondition(_string(head.args[0], "trait()"), op, value)
    if head.name in ("property", "context"):
        if not event_scope:
            raise QueryError(f"{head.name}() is only valid inside where() or a reducer", head.column)
        if _named(head.args[0], "parent") is not None:
            raise QueryError("property(parent: ...) can only be the value compared with", head.column)
        name = _string(head.args[0], f"{head.name}()")
        if head.name == "property":
            return ir.PropertyCondition(name, op, value)
        return ir.PropertyCondition(name, op, value, scope="context")
    if head.name == "entity":
        raise QueryError("entity() (linked audiences) is not supported", head.column)
    raise QueryError(f"a condition starts with event(), trait(), audience() or property(), not {head.name}()",
                     head.column)


def _condition(node: Tree[Token] | Token, *, event_scope: bool, quantified: bool = False) -> ir.Condition:
    """``quantified``: inside an ``ANY`` / ``ALL`` / ``NONE`` clause (which do not nest)."""
    if isinstance(node, Token):
        raise QueryError(f"unexpected {str(node)!r}", _col(node))
    kind = node.data
    if kind in ("or_expr", "and_expr"):
        parts = tuple(_condition(c, event_scope=event_scope, quantified=quantified) for c in node.children
                      if isinstance(c, Tree) and c.data not in ("or_op", "and_op"))
        return ir.Any(parts) if kind == "or_expr" else ir.All(parts)
    if kind == "not_":
        return ir.Not(_condition(node.children[-1], event_scope=event_scope, quantified=quantified))
    if kind in ("any_", "all_", "none_"):
        word = str(node.children[0])
        if event_scope:
            raise QueryError(f"{word} is a condition on an account's users, not valid inside where()", _col(node))
        if quantified:
            raise QueryError(f"{word} cannot be used inside another ANY, ALL or NONE", _col(node))
        inner = _condition(node.children[1], event_scope=False, quantified=True)
        if kind == "none_":  # "no user" is "every user does not"
            return ir.Quantified("all", ir.Not(inner))
        return ir.Quantified("any" if kind == "any_" else "all", inner)
    if kind == "chain":
        return _chain_condition(_calls(node), None, event_scope=event_scope)
    if kind == "compare":
        left, cmp, right = node.children
        if not (isinstance(left, Tree) and left.data == "chain"):
            raise QueryError("the left side of a comparison must be event(), trait() or property()",
                             _col(left))
        return _chain_condition(_calls(left), (str(cmp), right), event_scope=event_scope)
    raise QueryError("expected a condition", _col(node))


def parse_audience_query(text: str) -> ir.Condition:
    """An audience ``query:`` -> its condition tree; raises :class:`QueryError`."""
    tree = _parse(text)
    return _condition(tree, event_scope=False)


def parse_trait_query(text: str, key: str) -> ir.ComputedTrait:
    """A computed trait ``query:`` (a chain ending in a reducer) -> :class:`ir.ComputedTrait`."""
    tree = _parse(text)
    if isinstance(tree, Tree) and tree.data == "compare":
        raise QueryError("a computed trait query returns a value, so it cannot end in a comparison",
                         _col(tree.children[1]))
    if not (isinstance(tree, Tree) and tree.data == "chain"):
        raise QueryError("a computed trait query is event(...) followed by a reducer such as sum(...)",
                         _col(tree))
    calls = _calls(tree)
    if calls[0].name != "event":
        raise QueryError("a computed trait query starts with event()", calls[0].column)
    stream = _stream(calls, funnel=False)
    reducer, after = stream.rest[0], stream.rest[1:]
    where = None if not stream.where else (stream.where[0] if len(stream.where) == 1
                                           else ir.All(tuple(stream.where)))
    base = {"key": key, "event": stream.event, "where": where, "window": stream.window,
            "exclude_sources": stream.exclude_sources}
    if after and not (reducer.name == "unique" and [c.name for c in after] == ["count"]):
        raise QueryError(f"{after[0].name}() cannot follow {reducer.name}(); a computed trait query ends "
                         "with its reducer", after[0].column)
    if reducer.name == "count":
        _arity(reducer, 0, 0)
        return ir.ComputedTrait(kind="event_counter", **base)  # type: ignore[arg-type]
    if reducer.name == "mode":
        _arity(reducer, 1, 2)
        prop, _ = _property_arg(reducer.args[0], "mode")
        freq = 2
        if len(reducer.args) == 2:
            raw = _literal(reducer.args[1])
            if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
                raise QueryError("mode() minimum frequency must be a whole number, 1 or more",
                                 _col(reducer.args[1]))
            freq = raw
        return ir.ComputedTrait(kind="most_frequent", property=prop, min_frequency=freq,
                                **base)  # type: ignore[arg-type]
    _arity(reducer, 1, 1)
    prop, as_type = _property_arg(reducer.args[0], reducer.name)
    if reducer.name in ("sum", "avg", "min", "max"):
        if as_type is not None and (reducer.name in ("sum", "avg") or as_type not in ("number", "string")):
            raise QueryError(f"{reducer.name}() does not take 'as {as_type}'", reducer.column)
        return ir.ComputedTrait(kind="aggregation", property=prop, function=reducer.name,  # type: ignore[arg-type]
                                value_type=as_type or "number", **base)  # type: ignore[arg-type]
    if as_type is not None:
        raise QueryError(f"{reducer.name}() does not take 'as {as_type}'", reducer.column)
    if reducer.name == "unique":
        if after:
            _arity(after[0], 0, 0)
        return ir.ComputedTrait(kind="unique_list_count" if after else "unique_list", property=prop,
                                **base)  # type: ignore[arg-type]
    return ir.ComputedTrait(kind=reducer.name, property=prop, **base)  # type: ignore[arg-type]
