"""IR -> Segment's Query Language text: how a definition written in YAML reads as a ``query:``.

The console shows every definition in both forms so a user can compare it with a Segment
export, or copy it into one. Rendering is the inverse of ``query_language``: for everything
it renders, ``parse_audience_query(render_condition(c)) == c`` (tests hold it to that). What
the language cannot say (a ``TraitCondition`` on a computed value marked as such, or options
like ``historical``, which live beside the query, not in it) is either left to the YAML or,
for a condition, refused with :class:`QueryRenderError`, never rendered approximately.
"""

from __future__ import annotations

from traitsync.definitions import ir
from traitsync.definitions.operators import TUPLE_VALUED

_SYMBOL = {"equals": "=", "not_equals": "!=", "greater_than": ">", "greater_than_or_equal": ">=",
           "less_than": "<", "less_than_or_equal": "<="}
_CALL = {"exists": "exists", "not_exists": "absent", "contains": "contains", "not_contains": "omits",
         "starts_with": "starts_with", "ends_with": "ends_with", "one_of": "one_of", "none_of": "none_of",
         "before_date": "before_date", "after_date": "after_date", "within_last": "within_last",
         "within_next": "within_next", "before_last": "before_last", "after_next": "after_next"}
_RELATIVE = ("within_last", "within_next", "before_last", "after_next")
_UNITS = ((86400, "day"), (3600, "hour"), (60, "minute"), (1, "second"))


class QueryRenderError(Exception):
    """A definition the Query Language cannot express exactly."""


def _string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _duration(seconds: int) -> str:
    for size, unit in _UNITS:
        if seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    raise QueryRenderError(f"no duration for {seconds} seconds")  # pragma: no cover (1 divides all)


def _literal(value: ir.Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, ir.TraitRef):
        return f"trait({_string(value.key)})"
    if isinstance(value, ir.PropertyRef):
        return f"property(parent: {_string(value.name)})" if value.parent else f"property({_string(value.name)})"
    raise QueryRenderError(f"cannot write the value {value!r}")


def _compare(subject: str, op: str, value: ir.Value) -> str:
    if op in _SYMBOL:
        return f"{subject} {_SYMBOL[op]} {_literal(value)}"
    call = _CALL.get(op)
    if call is None:
        raise QueryRenderError(f"the operator {op!r} has no Query Language form")
    if op in ("exists", "not_exists"):
        return f"{subject}.{call}()"
    if op in _RELATIVE:
        if not isinstance(value, int) or isinstance(value, bool):
            raise QueryRenderError(f"{op} needs whole seconds")
        return f"{subject}.{call}({_duration(value)})"
    if op in TUPLE_VALUED:
        values = value if isinstance(value, tuple) else (value,)
        return f"{subject}.{call}({', '.join(_literal(v) for v in values)})"
    return f"{subject}.{call}({_literal(value)})"


def _window(window: ir.Window | None) -> str:
    if window is None:
        return ""
    if isinstance(window, ir.Within):
        return f".within({_duration(window.seconds)})"
    if isinstance(window, ir.Between):
        return f".between({_duration(window.start_seconds)}, {_duration(window.end_seconds)})"
    return f".within(parent: {_duration(window.seconds)})"


def _stream(event: str, where: ir.Condition | None, window: ir.Window | None, exclude: tuple[str, ...]) -> str:
    text = f"event({_string(event)})"
    if where is not None:
        text += f".where({render_condition(where)})"
    text += _window(window)
    if exclude:
        text += f".sources(exclude: {', '.join(_string(s) for s in exclude)})"
    return text


def _operand(cond: ir.Condition) -> str:
    """A junction inside another junction, or under NOT/ANY/ALL, needs parentheses."""
    text = render_condition(cond)
    return f"({text})" if isinstance(cond, ir.All | ir.Any) else text


def render_condition(cond: ir.Condition) -> str:
    """An audience condition as a query; raises :class:`QueryRenderError` when it has no exact form."""
    if isinstance(cond, ir.All | ir.Any):
        if len(cond.conditions) < 2:
            raise QueryRenderError("a junction of fewer than two conditions has no Query Language form")
        return (" AND " if isinstance(cond, ir.All) else " OR ").join(_operand(c) for c in cond.conditions)
    if isinstance(cond, ir.Not):
        return f"NOT {_operand(cond.condition)}"
    if isinstance(cond, ir.Quantified):
        return f"{cond.quantifier.upper()} {_operand(cond.condition)}"
    if isinstance(cond, ir.InAudience):
        return f"audience({_string(cond.key)})"
    if isinstance(cond, ir.TraitCondition):
        if cond.computed:
            raise QueryRenderError("a condition on a computed value is written as trait() only in YAML")
        return _compare(f"trait({_string(cond.key)})", cond.op, cond.value)
    if isinstance(cond, ir.PropertyCondition):
        head = "context" if cond.scope == "context" else "property"
        return _compare(f"{head}({_string(cond.property)})", cond.op, cond.value)
    if isinstance(cond, ir.Performed):
        symbol = {"at_least": ">=", "at_most": "<=", "exactly": "="}[cond.comparator]
        return f"{_stream(cond.event, cond.where, cond.window, cond.exclude_sources)}.count() {symbol} {cond.n}"
    raise QueryRenderError(f"{type(cond).__name__} has no Query Language form")


def render_trait(trait: ir.ComputedTrait) -> str:
    stream = _stream(trait.event, trait.where, trait.window, trait.exclude_sources)
    prop = f"property({_string(trait.property or '')})"
    if trait.kind == "event_counter":
        return f"{stream}.count()"
    if trait.kind == "aggregation":
        typed = f"{prop} as string" if trait.value_type == "string" else prop
        return f"{stream}.{trait.function}({typed})"
    if trait.kind == "most_frequent":
        return f"{stream}.mode({prop}, {trait.min_frequency})"
    if trait.kind == "unique_list":
        return f"{stream}.unique({prop})"
    if trait.kind == "unique_list_count":
        return f"{stream}.unique({prop}).count()"
    return f"{stream}.{trait.kind}({prop})"


def render_query(defn: ir.Definition) -> str:
    """The ``query:`` text of a definition (options such as ``historical`` stay in YAML)."""
    if isinstance(defn, ir.Audience):
        return render_condition(defn.condition)
    return render_trait(defn)
