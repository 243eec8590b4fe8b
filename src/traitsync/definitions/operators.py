"""Comparison operators: canonical names, the spellings users may write, and their value types.

Both front ends (YAML and the Query Language) normalise to the canonical names below and ask
:func:`operator_value_error` whether a value suits an operator, so one rule set decides what a
definition may say whichever form it was written in.
"""

from __future__ import annotations

from typing import Final

from traitsync.definitions.durations import parse_instant_ms

EQUALITY: Final = frozenset({"equals", "not_equals"})
ORDERING: Final = frozenset({"greater_than", "greater_than_or_equal", "less_than", "less_than_or_equal"})
SUBSTRING: Final = frozenset({"contains", "not_contains"})
AFFIX: Final = frozenset({"starts_with", "ends_with"})
MEMBERSHIP: Final = frozenset({"one_of", "none_of"})
PRESENCE: Final = frozenset({"exists", "not_exists"})
ABSOLUTE_DATE: Final = frozenset({"before_date", "after_date"})
RELATIVE_DATE: Final = frozenset({"within_last", "within_next", "before_last", "after_next"})
#: Operators whose value is a tuple of literals (any of them may match).
TUPLE_VALUED: Final = SUBSTRING | MEMBERSHIP
OPERATORS: Final = (EQUALITY | ORDERING | SUBSTRING | AFFIX | MEMBERSHIP | PRESENCE | ABSOLUTE_DATE
                    | RELATIVE_DATE)

#: Other spellings: the builder's words (spec 3.1 / 4.2), Query Language names and symbols.
ALIASES: Final[dict[str, str]] = {
    "=": "equals", "==": "equals", "equal": "equals", "is": "equals",
    "!=": "not_equals", "differs": "not_equals", "not_equal": "not_equals", "does_not_equal": "not_equals",
    ">": "greater_than", ">=": "greater_than_or_equal", "<": "less_than", "<=": "less_than_or_equal",
    "at_least": "greater_than_or_equal", "at_most": "less_than_or_equal",
    "greater_than_or_equal_to": "greater_than_or_equal", "less_than_or_equal_to": "less_than_or_equal",
    "does_not_contain": "not_contains", "omits": "not_contains",
    "contains_any_of": "contains", "contains_one_of": "contains",
    "equals_one_of": "one_of", "equals_any_of": "one_of", "any_of": "one_of",
    "equals_none_of": "none_of",
    "absent": "not_exists", "does_not_exist": "not_exists",
}


def normalise_operator(text: object) -> str | None:
    """The canonical name for ``text`` (``"less than or equal to"`` -> ``less_than_or_equal``)."""
    if not isinstance(text, str):
        return None
    key = "_".join(text.strip().lower().replace("-", " ").split())
    if key in OPERATORS:
        return key
    return ALIASES.get(key)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def operator_value_error(op: str, value: object, *, is_reference: bool = False) -> str | None:
    """Why ``value`` cannot go with ``op`` (None if it can).

    ``value`` is already normalised: a tuple for tuple-valued operators, whole seconds for the
    relative date operators. A dynamic reference (``trait(...)``, ``property(parent: ...)``) is
    only known at evaluation time, so only its place is checked here.
    """
    if op in PRESENCE:
        return None if value is None and not is_reference else f"{op} takes no value"
    if is_reference:
        if op in MEMBERSHIP or op in RELATIVE_DATE or op in ABSOLUTE_DATE:
            return f"{op} needs a literal value, not a reference"
        return None
    if value is None:
        return f"{op} needs a value (use exists / not_exists to test for a missing value)"
    if op in EQUALITY:
        if isinstance(value, str | bool) or _is_number(value):
            return None
        return f"{op} needs a string, number or boolean value"
    if op in ORDERING:
        return None if _is_number(value) else f"{op} needs a number"
    if op in TUPLE_VALUED:
        if not isinstance(value, tuple) or not value:
            return f"{op} needs a value or a non-empty list of values"
        if op in SUBSTRING and not all(isinstance(v, str) for v in value):
            return f"{op} needs strings"
        if op in MEMBERSHIP and not all(isinstance(v, str | bool) or _is_number(v) for v in value):
            return f"{op} needs strings, numbers or booleans"
        return None
    if op in AFFIX:
        return None if isinstance(value, str) else f"{op} needs a string"
    if op in ABSOLUTE_DATE:
        if parse_instant_ms(value) is None:
            return f"{op} needs an ISO 8601 date or timestamp such as 2024-01-31 or 2024-01-31T12:00:00Z"
        return None
    if op in RELATIVE_DATE:
        if _is_number(value) and isinstance(value, int) and value > 0:
            return None
        return f"{op} needs a duration such as 7d"
    return f"unknown operator {op!r}"
