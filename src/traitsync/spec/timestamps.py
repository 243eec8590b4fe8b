"""ISO-8601 parsing and formatting, and Segment's clock-skew correction (segment-spec 1.5)."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime
from functools import lru_cache

EPOCH_FLOOR_MS = 0  # Engage does not ingest events before 1970-01-01
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_NAIVE = datetime(1970, 1, 1)
#: The form traitsync writes and Segment's libraries send. Matched first so that the common
#: case skips the general parser and re-formatting; the pattern also keeps out forms that
#: ``fromisoformat`` reads as something else (ISO week dates such as ``2026-W47-5``).
_CANONICAL = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z")


def parse_iso_ms(value: str) -> int | None:
    """Epoch milliseconds of an ISO-8601 string, or None if it is not one.

    A string without a zone is read as UTC, as Segment's libraries send UTC.
    """
    if not value or len(value) > 64:
        return None
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    # Integer arithmetic: ``int(parsed.timestamp() * 1000)`` loses a millisecond to float
    # rounding for about one timestamp in 170 (``...26.160Z`` read as ``...26.159Z``).
    delta = parsed - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def canonical_iso_ms(value: str) -> int | None:
    """Epoch milliseconds of ``value`` if it is already in the canonical form, else None.

    For such a value ``format_iso_ms(result) == value``, so the caller can keep the string as
    it is; anything else (offsets, other precisions, bad dates) goes to ``parse_iso_ms``.
    """
    if len(value) != 24 or _CANONICAL.fullmatch(value) is None:
        return None
    try:
        delta = datetime.fromisoformat(value[:19]) - _EPOCH_NAIVE
    except ValueError:
        return None
    return (delta.days * 86_400 + delta.seconds) * 1000 + int(value[20:23])


def format_iso_ms(ms: int) -> str:
    """``2024-01-02T03:04:05.678Z``: millisecond precision, always UTC with a Z.

    Built from ``time.gmtime`` rather than ``datetime.strftime``: this runs twice per ingested
    event and strftime was a third of validation time.
    """
    seconds, millis = divmod(ms, 1000)
    t = time.gmtime(seconds)
    return (f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:"
            f"{t.tm_sec:02d}.{millis:03d}Z")


@lru_cache(maxsize=64)
def format_received_ms(ms: int) -> str:
    """``format_iso_ms`` for receipt times, which every event of a request shares."""
    return format_iso_ms(ms)


def corrected_timestamp_ms(received_ms: int, sent_ms: int | None, original_ms: int | None) -> int:
    """``timestamp = receivedAt - (sentAt - originalTimestamp)``; receivedAt when nothing is known."""
    if original_ms is None:
        return received_ms
    if sent_ms is None:
        return original_ms
    return received_ms - (sent_ms - original_ms)
