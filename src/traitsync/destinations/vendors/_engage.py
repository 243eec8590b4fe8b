"""Helpers the event-destination vendor adapters share: reading an Engage change, times, bodies.

An Engage change reaches an event destination as an identify (``traits.<key> = value``, an
audience as a boolean) or a track (``Audience Entered`` / ``Audience Exited`` /
``Trait Computed`` with ``properties.<key>`` and ``properties.audience_key|trait_key``). The
adapters read what they send from ``item.fields`` (their ``default_mappings``, overridable by
the user), so these helpers only convert values and group items; nothing here does I/O.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from traitsync.destinations.base import Item, Outcome, Response, dumps, status_outcome
from traitsync.errors import InvalidPayload

#: Identity fields most adapters map: the message's ids and the email Engage adds
#: (``traits.email`` on identify, ``context.traits.email`` on track).
EMAIL = {"@first": ["$.traits.email", "$.context.traits.email", "$.properties.email"]}


def text(value: Any) -> str | None:
    """A non-empty string form of an identifier, or None."""
    if value is None or isinstance(value, dict | list):
        return None
    out = str(value)
    return out if out.strip() else None


def as_dict(value: Any) -> dict[str, Any]:
    return dict(value) if isinstance(value, Mapping) else {}


def parse_time(value: Any) -> dt.datetime | None:
    """A message timestamp (ISO-8601, or epoch seconds/ms) as an aware UTC datetime."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        seconds = float(value) / 1000.0 if value > 1e11 else float(value)
        return dt.datetime.fromtimestamp(seconds, dt.UTC)
    if isinstance(value, str) and value.strip():
        raw = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
        try:
            parsed = dt.datetime.fromisoformat(raw)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=dt.UTC)
        return parsed.astimezone(dt.UTC)
    return None


def event_time(item: Item, value: Any = None) -> dt.datetime:
    """The change's time: the mapped value, else the message's timestamp, else now."""
    for candidate in (value, item.message.get("timestamp"), item.message.get("originalTimestamp")):
        parsed = parse_time(candidate)
        if parsed is not None:
            return parsed
    return dt.datetime.now(dt.UTC)


def iso(when: dt.datetime) -> str:
    """ISO-8601 in UTC with milliseconds and a ``Z``."""
    return when.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def epoch_s(when: dt.datetime) -> int:
    return math.floor(when.timestamp())


def epoch_ms(when: dt.datetime) -> int:
    return math.floor(when.timestamp() * 1000)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def basic(user: str, password: str) -> str:
    return "Basic " + b64(f"{user}:{password}".encode())


def is_track(item: Item) -> bool:
    return item.type == "track"


def invalid(message: str, code: str = "INVALID_PAYLOAD") -> InvalidPayload:
    """An item that cannot be sent (no identifier...): delivery drops it alone with ``code``."""
    return InvalidPayload(message, code=code)


def size_groups(indices: Sequence[int], size_of: Callable[[int], int], *, max_items: int,
                max_bytes: int | None = None, overhead: int = 0) -> list[tuple[int, ...]]:
    """Split ``indices`` into ordered groups of at most ``max_items`` whose summed sizes plus
    ``overhead`` stay within ``max_bytes``. An item too big on its own goes alone."""
    groups: list[tuple[int, ...]] = []
    current: list[int] = []
    total = overhead
    for i in indices:
        size = size_of(i) + 1
        full = len(current) >= max_items or (max_bytes is not None and current and total + size > max_bytes)
        if full:
            groups.append(tuple(current))
            current, total = [], overhead
        current.append(i)
        total += size
    if current:
        groups.append(tuple(current))
    return groups


def json_size(value: Any) -> int:
    return len(dumps(value))


def whole(response: Response, count: int) -> list[Outcome]:
    """The request's status for every item it carried."""
    return [status_outcome(response)] * count


def retry_header(response: Response, *names: str) -> float | None:
    """The first of ``names`` that holds a number of seconds (vendors' own Retry-After headers)."""
    for name in names:
        raw = response.header(name)
        if raw is None:
            continue
        try:
            return max(0.0, float(raw.strip()))
        except ValueError:
            continue
    return None


def with_retry_after(outcome: Outcome, seconds: float | None) -> Outcome:
    if outcome.kind != "retry" or seconds is None or outcome.retry_after is not None:
        return outcome
    return Outcome.retry(seconds, outcome.code, outcome.message)


def clean(value: Mapping[str, Any]) -> dict[str, Any]:
    """Drop keys whose value is None (optional vendor fields left unmapped)."""
    return {k: v for k, v in value.items() if v is not None}
