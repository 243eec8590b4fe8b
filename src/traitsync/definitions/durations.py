"""Durations (``30d``) and dates (ISO 8601) as the definitions and the evaluators read them.

Windows are stored as whole seconds so that the IR compares exactly and both engines do the
same integer arithmetic on epoch milliseconds; the text form exists only at the edges.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_DURATION = re.compile(r"^([1-9][0-9]*)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
#: Query Language time units (singular and plural) to seconds.
QL_UNIT_SECONDS = {
    "second": 1, "seconds": 1, "minute": 60, "minutes": 60,
    "hour": 3600, "hours": 3600, "day": 86400, "days": 86400,
}
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: object) -> int | None:
    """``"30d"`` -> 2592000; None for anything that is not a positive whole number plus s/m/h/d."""
    if not isinstance(text, str):
        return None
    match = _DURATION.match(text.strip())
    if match is None:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest exact text form, so ``ir_to_dict`` prints ``30d`` rather than ``2592000s``."""
    for unit in ("d", "h", "m"):
        size = _UNIT_SECONDS[unit]
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_instant_ms(value: object) -> int | None:
    """An ISO 8601 timestamp or ``yyyy-mm-dd`` date as epoch ms (UTC); None if not a date string.

    Only strings are dates: a number in a trait could be a count or an epoch in s or ms, and
    guessing would make the two engines disagree. A date alone means midnight UTC (spec 4.2:
    evaluation is in UTC); a timestamp without an offset is read as UTC.
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        if _DATE_ONLY.match(text):
            day = date.fromisoformat(text)
            parsed = datetime(day.year, day.month, day.day, tzinfo=UTC)
        else:
            parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return (parsed - _EPOCH) // timedelta(milliseconds=1)
