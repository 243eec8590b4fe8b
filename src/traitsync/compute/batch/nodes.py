"""The few SQL operations the compiler needs that engines spell differently.

Each is a sqlglot node with no rendering of its own: every dialect module maps it to its
engine's spelling (``dialects/<name>.py``), so the compiler builds one AST and never asks which
engine it is for. A dialect without a mapping raises :class:`UnsupportedInDialect` at render time.
"""

from __future__ import annotations

from sqlglot import exp


class JsonRaw(exp.Expression, exp.Func):
    """The JSON text of the member at ``expressions`` (a key path) of the JSON text ``this``.

    NULL when the member is missing or JSON ``null``: the reference evaluator reads both as
    "no value". Strings keep their quotes (``"x"``), so the type stays visible to later checks.
    """

    arg_types = {"this": True, "expressions": True}


class JsonDoc(exp.Expression, exp.Func):
    """The JSON text ``this`` parsed once for the members at ``expressions`` (key-path tuples).

    Engines re-parse JSON text at every extraction; an event's properties are read through one
    :class:`JsonDoc` and several :class:`JsonPick` so that each body is parsed once.
    """

    arg_types = {"this": True, "expressions": True}


class JsonPick(exp.Expression, exp.Func):
    """Member ``index`` (whose key path is ``expressions``) of a :class:`JsonDoc`, as in :class:`JsonRaw`."""

    arg_types = {"this": True, "index": True, "expressions": True}


class JsonUnquote(exp.Expression, exp.Func):
    """The text of a JSON string literal (``"a\\"b"`` -> ``a"b``)."""

    arg_types = {"this": True}


class SafeDouble(exp.Expression, exp.Func):
    """A numeric JSON text as a double; NULL (never an error) for anything else."""

    arg_types = {"this": True}


class SafeBigint(exp.Expression, exp.Func):
    """An integer JSON text (no fraction, no exponent) as a 64-bit integer; NULL (never an error)
    for anything else, so a count of non-NULL results tells a sum of integers from one of floats."""

    arg_types = {"this": True}


class BinaryText(exp.Expression, exp.Func):
    """Text compared by code point, as Python compares strings (PostgreSQL collations do not)."""

    arg_types = {"this": True}


class OrderedConcat(exp.Expression, exp.AggFunc):
    """``this`` values joined by ``separator`` in ``order`` (by code point): the unique list."""

    arg_types = {"this": True, "order": True, "separator": True}


class IsoMs(exp.Expression, exp.Func):
    """An ISO 8601 date or timestamp text as epoch milliseconds (UTC when no offset); NULL if not one."""

    arg_types = {"this": True}


#: A shape check in front of the engines' timestamp parsers: Python's ``fromisoformat`` forms
#: that every engine parses the same way (date, date and time, fractions, ``Z`` or an offset).
ISO_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.][0-9]{1,6})?)?"
               r"(Z|[+-][0-9]{2}:[0-9]{2})?)?$")
