"""The adapter interface every vendor module implements (STYLE rule 1).

An adapter is data plus two pure functions: ``build`` turns messages into HTTP requests and
``classify`` turns one response into one ``Outcome`` per message it carried. It never does
I/O, retries or queueing, so it can be golden-tested without a network and delivery can apply
the same limiter, backoff and dead letter to every vendor.

Messages are plain dicts: Segment messages (``identify``/``track``/``group``) for event
destinations, and ``audience_list`` operations (create a list, add members, remove members)
for list destinations; activation builds both (``activation/payloads.py``).
"""

from __future__ import annotations

import email.utils
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from traitsync.delivery.classify import AUTH, DROP, OK, classify_status

Message = dict[str, Any]
Kind = Literal["event", "list"]
OutcomeKind = Literal["ok", "retry", "auth", "drop"]
ListAction = Literal["create", "add", "remove"]

#: ``type`` of a list operation message (not a Segment type; never sent to event destinations).
LIST_MESSAGE_TYPE = "audience_list"
EVENT_TYPES = frozenset({"identify", "track", "group"})


def dumps(value: Any) -> bytes:
    """Compact, key-order-preserving JSON: the exact bytes we send (and sign)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


@dataclass(frozen=True)
class Request:
    """One HTTP request (or, for ``file://`` URLs, one append to a local file).

    ``indices`` are the positions, in the ``build`` input, of the messages this request
    carries; ``classify`` later receives exactly those messages, in that order.
    """

    method: str
    url: str
    body: bytes
    indices: tuple[int, ...]
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float | None = None


@dataclass(frozen=True)
class Response:
    """What came back: the status, headers with lower-cased names, and the raw body."""

    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes = b""

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        """The body as JSON, or ``None`` when it is empty or not JSON (vendors do both)."""
        try:
            return json.loads(self.body) if self.body else None
        except ValueError:
            return None


@dataclass(frozen=True)
class Outcome:
    """The fate of one message: delivered, retry (maybe after a delay), bad credentials, or drop.

    ``code`` is the stable failure code shown in the delivery overview (the HTTP status as text,
    or a vendor code); ``detail`` carries data the caller keeps, e.g. a created list's id.
    """

    kind: OutcomeKind
    retry_after: float | None = None
    code: str | None = None
    detail: Mapping[str, Any] | None = None

    @classmethod
    def ok(cls, detail: Mapping[str, Any] | None = None) -> Outcome:
        return cls("ok", detail=detail)

    @classmethod
    def retry(cls, retry_after: float | None = None, code: str | None = None) -> Outcome:
        return cls("retry", retry_after=retry_after, code=code)

    @classmethod
    def auth(cls, code: str) -> Outcome:
        return cls("auth", code=code)

    @classmethod
    def drop(cls, code: str) -> Outcome:
        return cls("drop", code=code)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds or an HTTP date (RFC 9110 10.2.3)."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def status_outcome(response: Response) -> Outcome:
    """The outcome the status table gives one response (``delivery/classify.py``)."""
    status = classify_status(response.status)
    if status is OK:
        return Outcome.ok()
    code = str(response.status)
    if status is AUTH:
        return Outcome.auth(code)
    if status is DROP:
        return Outcome.drop(code)
    return Outcome.retry(parse_retry_after(response.header("retry-after")), code)


def classify_by_status(response: Response, messages: Sequence[Message]) -> list[Outcome]:
    """Default ``classify``: the batch's status applies to every message in it."""
    outcome = status_outcome(response)
    return [outcome] * len(messages)


class DestinationSettings(BaseModel):
    """Settings every adapter accepts; ``endpoint`` overrides the vendor host or URL."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    endpoint: str | None = Field(default=None, description="Override the vendor host or target URL "
                                 "(a local test server, a proxy, a regional host).")


S = TypeVar("S", bound=DestinationSettings)


@dataclass(frozen=True)
class Destination(Generic[S]):
    """A vendor adapter: declarative capabilities plus the pure ``build`` and ``classify``.

    ``default_rate`` is requests/second for the limiter, ``max_batch`` the most messages one
    request may carry, ``min_list_interval_s`` the vendor's floor on list sync cadence.
    """

    name: str
    slug: str
    settings_model: type[S]
    build: Callable[[Sequence[Message], S], list[Request]]
    classify: Callable[[Response, Sequence[Message]], list[Outcome]] = classify_by_status
    default_rate: float = 10.0
    max_batch: int = 1
    kinds: frozenset[Kind] = frozenset({"event"})
    min_list_interval_s: float = 3600.0
    timeout_s: float = 10.0
    event_types: frozenset[str] = EVENT_TYPES

    def parse_settings(self, data: Mapping[str, Any]) -> S:
        return self.settings_model.model_validate(dict(data))

    def supports(self, message: Mapping[str, Any]) -> bool:
        """Whether this destination takes this message at all (else: filtered, not failed)."""
        kind = message.get("type")
        if kind == LIST_MESSAGE_TYPE:
            return "list" in self.kinds
        return "event" in self.kinds and kind in self.event_types


def chunks(count: int, size: int) -> list[tuple[int, ...]]:
    """Index groups of at most ``size`` covering ``range(count)`` in order."""
    step = max(1, size)
    return [tuple(range(i, min(i + step, count))) for i in range(0, count, step)]
