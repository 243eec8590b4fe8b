"""The adapter interface every vendor module implements.

An adapter is data plus pure functions. The simple form is a pair: ``build`` turns items into
HTTP requests and ``classify`` turns one response into one ``Outcome`` per item it carried.
Vendors that must look a record up before writing it, or whose second request depends on the
first answer, write an ``exchange`` instead: a generator that *yields* each request and is
*sent* its response, then returns one outcome per item. It still does no I/O itself, so it is
golden-tested by feeding it canned responses, and delivery applies one limiter, one token
cache, one backoff and one dead letter to every request of every vendor (each yielded request
costs one slot of the destination's rate cap and appears in the debugger).

What an adapter sees per message is an ``Item``: the Segment message (the new state), the
vendor fields the destination's mappings produce from it, what this destination last received
for the same profile and computation (``previous``: old value and the identifiers it went to),
and profile traits it asked for (``traits``; Zendesk needs ``name``).

Credentials a vendor hands out (OAuth tokens, session logins) are described by ``TokenAuth``
(``destinations/auth.py``): how to ask for a token and how to read the answer. Delivery fetches,
caches and refreshes them; the adapter only receives the current ``Token``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from traitsync.destinations.auth import Token, TokenAuth
from traitsync.destinations.http import Request, Response, dumps, parse_retry_after
from traitsync.destinations.status import AUTH, DROP, OK, classify_status

__all__ = ["LIST_GONE", "LIST_MESSAGE_TYPE", "Destination", "DestinationSettings", "Exchange", "Item", "Message",
           "Outcome", "Previous", "Request", "Response", "Token", "TokenAuth", "chunks", "classify_by_status", "dumps",
           "items_of", "outcomes_by_index", "parse_retry_after", "run_exchange", "status_outcome"]

Message = dict[str, Any]
Mode = Literal["event", "list"]
OutcomeKind = Literal["ok", "retry", "auth", "drop", "unsent"]
ListAction = Literal["create", "add", "remove"]

#: ``type`` of a list operation message (not a Segment type; never sent to event destinations).
LIST_MESSAGE_TYPE = "audience_list"
#: The ``code`` of an outcome saying the vendor's list no longer exists (deleted on their side):
#: the next sync creates it again and uploads every member.
LIST_GONE = "LIST_NOT_FOUND"
EVENT_TYPES = frozenset({"identify", "track", "group"})


@dataclass(frozen=True)
class Outcome:
    """The fate of one item: delivered, retry (maybe after a delay), bad credentials, drop, or
    unsent (the exchange stopped before sending it: it goes back to the queue, no attempt counted).

    ``code`` is the stable failure code shown in the delivery overview (the HTTP status as text,
    or a vendor code); ``detail`` carries data the caller keeps, e.g. a created list's id;
    ``message`` is a short human reason (secrets are redacted before it is stored).
    """

    kind: OutcomeKind
    retry_after: float | None = None
    code: str | None = None
    detail: Mapping[str, Any] | None = None
    message: str | None = None

    @classmethod
    def ok(cls, detail: Mapping[str, Any] | None = None) -> Outcome:
        return cls("ok", detail=detail)

    @classmethod
    def retry(cls, retry_after: float | None = None, code: str | None = None, message: str | None = None
              ) -> Outcome:
        return cls("retry", retry_after=retry_after, code=code, message=message)

    @classmethod
    def auth(cls, code: str, message: str | None = None) -> Outcome:
        return cls("auth", code=code, message=message)

    @classmethod
    def drop(cls, code: str, message: str | None = None) -> Outcome:
        return cls("drop", code=code, message=message)

    @classmethod
    def unsent(cls) -> Outcome:
        return cls("unsent")


@dataclass(frozen=True)
class Previous:
    """What the destination last received for this (profile, computation), if anything."""

    value: Any
    identifiers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Item:
    """One message as an adapter sees it (see the module docstring)."""

    message: Message
    fields: Mapping[str, Any] = field(default_factory=dict)
    previous: Previous | None = None
    traits: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return str(self.message.get("type", ""))


def items_of(messages: Sequence[Message]) -> list[Item]:
    """Wrap bare messages (tests, adapters with no mappings)."""
    return [Item(m) for m in messages]


def status_outcome(response: Response) -> Outcome:
    """The outcome the status table gives one response (``destinations/status.py``)."""
    if response.error is not None:
        if response.settings_error:
            return Outcome.auth("INVALID_SETTINGS")
        return Outcome.retry(code=response.error)
    status = classify_status(response.status)
    if status is OK:
        return Outcome.ok()
    code = str(response.status)
    if status is AUTH:
        return Outcome.auth(code)
    if status is DROP:
        return Outcome.drop(code)
    return Outcome.retry(parse_retry_after(response.header("retry-after")), code)


def classify_by_status(response: Response, items: Sequence[Item]) -> list[Outcome]:
    """Default ``classify``: the request's status applies to every item it carried."""
    outcome = status_outcome(response)
    return [outcome] * len(items)


def outcomes_by_index(count: int, failed: Mapping[int, Outcome], ok: Outcome | None = None) -> list[Outcome]:
    """Per-item outcomes from a partial-failure answer: ``failed`` by position, the rest ``ok``."""
    success = ok or Outcome.ok()
    return [failed.get(i, success) for i in range(count)]


class DestinationSettings(BaseModel):
    """Settings every adapter accepts; ``endpoint`` overrides the vendor host or URL."""

    # Validation errors never echo the settings given: they hold secrets.
    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)

    endpoint: str | None = Field(default=None, description="Override the vendor host or target URL "
                                 "(a local test server, a proxy, a regional host).")

    def secrets(self) -> list[str]:
        """Every secret value in these settings, for redaction from logs and the debugger."""
        out: list[str] = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                text = value.get_secret_value()
                if text:
                    out.append(text)
        return out


S = TypeVar("S", bound=DestinationSettings)

#: An exchange: yields requests, is sent each response, returns one outcome per item.
Exchange = Generator[Request, Response, list[Outcome]]
Build = Callable[[Sequence[Item], S], list[Request]]
Classify = Callable[[Response, Sequence[Item]], list[Outcome]]


@dataclass(frozen=True)
class Destination(Generic[S]):
    """A vendor adapter: declarative capabilities plus pure request building.

    ``default_rate`` is requests/second for the limiter (the seeds' table overrides it by vendor
    name), ``max_batch`` the most items one exchange may carry, ``min_list_interval_s`` the
    vendor's floor on list sync cadence. ``default_mappings`` are the vendor fields filled from
    each message (``mappings.py`` syntax); ``custom_fields`` lets a user's mappings add fields
    the adapter does not declare (the webhook posts whatever the user maps). ``required_traits``
    are profile traits activation attaches to each item (the seeds' "additional identifiers").
    """

    name: str
    slug: str
    settings_model: type[S]
    build: Build[S] | None = None
    classify: Classify = classify_by_status
    exchange: Callable[[Sequence[Item], S, Token | None], Exchange] | None = None
    auth: TokenAuth | None = None
    default_rate: float = 10.0
    max_batch: int = 1
    modes: frozenset[Mode] = frozenset({"event"})
    min_list_interval_s: float = 3600.0
    timeout_s: float = 10.0
    event_types: frozenset[str] = EVENT_TYPES
    default_mappings: Mapping[str, Any] = field(default_factory=dict)
    custom_fields: bool = False
    required_traits: frozenset[str] = frozenset()
    description: str = ""
    #: Whether one batch request may carry several messages of the same profile (in order). Only
    #: where the vendor keeps a batch's order for one person (the webhook posts a JSON array);
    #: elsewhere a profile's next message waits for the request carrying its previous one.
    batch_repeats_profiles: bool = False
    #: List destinations whose uploads name the vendor's list id (Facebook, Google): the first sync
    #: sends ``create`` alone and uploads members once the vendor has answered with the id.
    list_id_before_members: bool = False
    #: Most members one list operation carries (0: ``max_batch``); Facebook 10,000, Snapchat 100,000.
    members_per_operation: int = 0
    #: Smallest audience the vendor serves (Facebook, Google: 100). A list is not created below it:
    #: the sync is held, with the reason in the destination's status, until the audience grows.
    min_list_size: int = 0
    #: A vendor that throttles inside a 2xx answer (Marketo 606): how long to back off, or None.
    #: Delivery feeds it to the rate limiter as it does a 429, so every process slows down.
    throttle: Callable[[Response], float | None] | None = None
    #: A cheap authenticated request that proves settings and credentials (``destinations check``).
    check: Callable[[S, Token | None], Request] | None = None

    def __post_init__(self) -> None:
        if self.build is None and self.exchange is None:
            raise TypeError(f"adapter {self.slug!r} needs build or exchange")

    @property
    def list_batch(self) -> int:
        return self.members_per_operation or self.max_batch

    def parse_settings(self, data: Mapping[str, Any]) -> S:
        return self.settings_model.model_validate(dict(data))

    def supports(self, message: Mapping[str, Any]) -> bool:
        """Whether this destination takes this message at all (else: filtered, not failed)."""
        kind = message.get("type")
        if kind == LIST_MESSAGE_TYPE:
            return "list" in self.modes
        return "event" in self.modes and kind in self.event_types

    def start(self, items: Sequence[Item], settings: S, token: Token | None = None) -> Exchange:
        """The exchange for one batch: the adapter's own, or ``build`` then ``classify`` per request."""
        if self.exchange is not None:
            return self.exchange(items, settings, token)
        assert self.build is not None
        return _build_and_classify(self.build, self.classify, items, settings)


def _build_and_classify(build: Build[Any], classify: Classify, items: Sequence[Item], settings: Any) -> Exchange:
    """Send each built request in turn; after an answer that says the credentials are bad, the
    rest are not sent (they would fail alike) and go back to the queue untouched."""
    outcomes: list[Outcome | None] = [None] * len(items)
    refused = False
    for request in build(items, settings):
        if refused:
            for i in request.indices:
                outcomes[i] = Outcome.unsent()
            continue
        response = yield request
        refused = status_outcome(response).kind == "auth"
        carried = [items[i] for i in request.indices]
        got = classify(response, carried)
        if len(got) != len(carried):
            raise RuntimeError(f"classify returned {len(got)} outcomes for {len(carried)} items")
        for i, outcome in zip(request.indices, got, strict=True):
            outcomes[i] = outcome
    missing = [i for i, o in enumerate(outcomes) if o is None]
    if missing:
        raise RuntimeError(f"build left items {missing} without a request")
    return [o for o in outcomes if o is not None]


def run_exchange(exchange: Exchange, answer: Callable[[Request], Response]) -> tuple[list[Outcome], list[Request]]:
    """Drive an exchange with ``answer`` (tests and golden files): outcomes and every request."""
    sent: list[Request] = []
    try:
        request = next(exchange)
        while True:
            sent.append(request)
            request = exchange.send(answer(request))
    except StopIteration as done:
        return list(done.value), sent


def chunks(count: int, size: int) -> list[tuple[int, ...]]:
    """Index groups of at most ``size`` covering ``range(count)`` in order."""
    step = max(1, size)
    return [tuple(range(i, min(i + step, count))) for i in range(0, count, step)]
