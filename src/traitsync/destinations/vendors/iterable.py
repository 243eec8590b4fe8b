"""Iterable: identify -> user dataFields, track -> custom events, with the ``Api-Key`` header.

Two kinds share this module:

* ``iterable`` sends one change per request to ``POST /api/users/update`` and
  ``POST /api/events/track``, the endpoints Iterable allows 500 and 2,000 requests/second on;
  Engage's cap for Iterable is 500 requests/second.
* ``iterable_bulk`` sends up to 1,000 changes (and at most 4 MB) per request to
  ``POST /api/users/bulkUpdate`` and ``POST /api/events/trackBulk``. Iterable allows only 5
  bulkUpdate requests/second per key (10 trackBulk per project), so its default rate is 5/s: up
  to 5,000 changes a second. Bulk answers are 200 even when some users failed; failed users are
  listed by email or userId (``failedUpdates``, ``invalidEmails``, ``invalidUserIds``,
  ``disallowedEventNames``) and only those items fail. Forgotten (GDPR-deleted) users count as
  delivered: Iterable will never take them.

Identity: ``userId`` (Segment ``userId``) and ``email`` (``traits.email`` /
``context.traits.email``), with ``preferUserId: true`` as Segment sends it; an item with neither
is not sent. Emails are trimmed and lowercased; a userId with surrounding spaces is refused
(Iterable would treat it as a different user). Host: ``https://api.iterable.com``, or
``https://api.eu.iterable.com`` with ``dataCenterLocation: europe``; ``endpoint`` overrides both.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Item,
    Outcome,
    Request,
    Response,
    dumps,
    status_outcome,
)
from traitsync.destinations.vendors._engage import (
    EMAIL,
    as_dict,
    epoch_s,
    event_time,
    invalid,
    is_track,
    json_size,
    size_groups,
    text,
)

HOSTS = {"united_states": "https://api.iterable.com", "europe": "https://api.eu.iterable.com"}
MAX_BULK = 1000
MAX_BULK_BYTES = 4 * 1024 * 1024
USER_AGENT = "traitsync (iterable)"


class IterableSettings(DestinationSettings):
    apiKey: SecretStr = Field(description="A server-side API key of the Iterable project.")
    dataCenterLocation: Literal["united_states", "europe"] = Field(
        default="united_states", description="Where the project lives: api.iterable.com or api.eu.iterable.com.")
    mergeNestedObjects: bool = Field(default=False, description="Merge nested dataFields objects "
                                     "instead of replacing them.")
    updateOnly: bool = Field(default=False, description="Bulk: only update users that exist.")

    @field_validator("apiKey")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("apiKey must not be empty")
        return value

    @property
    def host(self) -> str:
        return (self.endpoint or HOSTS[self.dataCenterLocation]).rstrip("/")


DEFAULT_MAPPINGS: dict[str, Any] = {
    "userId": "$.userId",
    "email": EMAIL,
    "dataFields": {"@first": ["$.traits", "$.properties"]},
    "eventName": "$.event",
    "id": "$.messageId",
    "createdAt": "$.timestamp",
}


def _headers(settings: IterableSettings) -> dict[str, str]:
    return {"Api-Key": settings.apiKey.get_secret_value(), "Content-Type": "application/json",
            "User-Agent": USER_AGENT}


def identity(item: Item) -> dict[str, str]:
    out: dict[str, str] = {}
    email = text(item.fields.get("email"))
    if email:
        out["email"] = email.strip().lower()
    user_id = text(item.fields.get("userId"))
    if user_id is not None:
        if user_id != user_id.strip():
            raise invalid("Iterable treats a userId with surrounding spaces as another user", code="INVALID_USER_ID")
        out["userId"] = user_id
    if not out:
        raise invalid("Iterable needs an email or a userId; the message has neither", code="MISSING_IDENTIFIER")
    return out


def user_body(item: Item, settings: IterableSettings) -> dict[str, Any]:
    ident = identity(item)
    fields = {k: v for k, v in as_dict(item.fields.get("dataFields")).items() if k != "email" or "email" not in ident}
    body: dict[str, Any] = {**ident, "dataFields": fields, "preferUserId": True}
    if settings.mergeNestedObjects:
        body["mergeNestedObjects"] = True
    return body


def event_body(item: Item) -> dict[str, Any]:
    name = text(item.fields.get("eventName"))
    if name is None:
        raise invalid("an Iterable event needs a name", code="MISSING_EVENT_NAME")
    body: dict[str, Any] = {**identity(item), "eventName": name}
    if text(item.fields.get("id")):
        body["id"] = text(item.fields["id"])
    body["createdAt"] = epoch_s(event_time(item, item.fields.get("createdAt")))
    body["dataFields"] = as_dict(item.fields.get("dataFields"))
    return body


# -- one change per request -----------------------------------------------------------------------

def build(items: Sequence[Item], settings: IterableSettings) -> list[Request]:
    requests = []
    for i, item in enumerate(items):
        if is_track(item):
            url, body = f"{settings.host}/api/events/track", event_body(item)
        else:
            url, body = f"{settings.host}/api/users/update", user_body(item, settings)
        requests.append(Request("POST", url, dumps(body), (i,), _headers(settings), authorize=False))
    return requests


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    outcome = status_outcome(response)
    data = response.json()
    code = data.get("code") if isinstance(data, dict) else None
    if code == "RateLimitExceeded" and outcome.kind != "retry":
        outcome = Outcome.retry(code="RateLimitExceeded")
    elif outcome.kind == "auth" and code:
        outcome = Outcome.auth(str(code))
    elif outcome.kind == "drop" and code:
        outcome = Outcome.drop(str(code), str(data.get("msg") or "")[:200] or None)
    return [outcome] * len(items)


# -- bulk -----------------------------------------------------------------------------------------

def build_bulk(items: Sequence[Item], settings: IterableSettings) -> list[Request]:
    users = {i: user_body(item, settings) for i, item in enumerate(items) if not is_track(item)}
    events = {i: event_body(item) for i, item in enumerate(items) if is_track(item)}
    requests = []
    for group in size_groups(list(users), lambda i: json_size(users[i]), max_items=MAX_BULK,
                             max_bytes=MAX_BULK_BYTES, overhead=64):
        body: dict[str, Any] = {"users": [users[i] for i in group]}
        if settings.updateOnly:
            body["updateOnly"] = True
        requests.append(Request("POST", f"{settings.host}/api/users/bulkUpdate", dumps(body), group,
                                _headers(settings), authorize=False))
    for group in size_groups(list(events), lambda i: json_size(events[i]), max_items=MAX_BULK,
                             max_bytes=MAX_BULK_BYTES, overhead=64):
        requests.append(Request("POST", f"{settings.host}/api/events/trackBulk",
                                dumps({"events": [events[i] for i in group]}), group, _headers(settings),
                                authorize=False))
    return requests


_FORGOTTEN = ("forgottenEmails", "forgottenUserIds")


def _failed_sets(data: dict[str, Any]) -> tuple[dict[str, str], dict[str, str], set[str]]:
    """(email -> reason, userId -> reason, forgotten ids and emails) from a bulk answer."""
    emails: dict[str, str] = {}
    user_ids: dict[str, str] = {}
    forgotten: set[str] = set()
    for reason in ("invalidEmails",):
        for value in data.get(reason) or []:
            emails[str(value).lower()] = reason
    for value in data.get("invalidUserIds") or []:
        user_ids[str(value)] = "invalidUserIds"
    failed = data.get("failedUpdates")
    for reason, values in (failed.items() if isinstance(failed, dict) else []):
        for value in values or []:
            if reason in _FORGOTTEN:
                forgotten.add(str(value).lower() if reason.endswith("Emails") else str(value))
            elif reason.endswith("Emails"):
                emails[str(value).lower()] = reason
            elif reason.endswith("UserIds"):
                user_ids[str(value)] = reason
    return emails, user_ids, forgotten


def classify_bulk(response: Response, items: Sequence[Item]) -> list[Outcome]:
    base = classify(response, items)
    data = response.json()
    if base[0].kind != "ok" or not isinstance(data, dict):
        return base
    emails, user_ids, forgotten = _failed_sets(data)
    disallowed = {str(n) for n in data.get("disallowedEventNames") or []}
    outcomes: list[Outcome] = []
    for item in items:
        email = (text(item.fields.get("email")) or "").strip().lower()
        user_id = text(item.fields.get("userId")) or ""
        if (email and email in forgotten) or (user_id and user_id in forgotten):
            outcomes.append(Outcome.ok({"iterable": "forgotten"}))
        elif is_track(item) and text(item.fields.get("eventName")) in disallowed:
            outcomes.append(Outcome.drop("disallowedEventNames"))
        elif user_id and user_id in user_ids:
            outcomes.append(Outcome.drop(user_ids[user_id]))
        elif email and email in emails:
            outcomes.append(Outcome.drop(emails[email]))
        else:
            outcomes.append(Outcome.ok())
    return outcomes


def check(settings: IterableSettings, _token: object) -> Request:
    return Request("GET", f"{settings.host}/api/channels", headers=_headers(settings), authorize=False,
                   purpose="check")


DESTINATION: Destination[IterableSettings] = Destination(
    name="Iterable",
    slug="iterable",
    settings_model=IterableSettings,
    build=build,
    classify=classify,
    default_rate=500.0,
    max_batch=1,
    timeout_s=30.0,
    event_types=frozenset({"identify", "track"}),
    default_mappings=DEFAULT_MAPPINGS,
    check=check,
    description="Iterable users/update and events/track, one change per request (500 requests/s).",
)

BULK_DESTINATION: Destination[IterableSettings] = Destination(
    name="Iterable Bulk",
    slug="iterable_bulk",
    settings_model=IterableSettings,
    build=build_bulk,
    classify=classify_bulk,
    default_rate=5.0,
    max_batch=MAX_BULK,
    timeout_s=30.0,
    event_types=frozenset({"identify", "track"}),
    default_mappings=DEFAULT_MAPPINGS,
    check=check,
    description="Iterable users/bulkUpdate and events/trackBulk, up to 1,000 changes per request.",
)
