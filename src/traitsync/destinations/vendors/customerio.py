"""Customer.io (Track API v2): identify -> person attributes, track -> person events.

Auth is HTTP Basic with the workspace's Site ID as user and its Track API key as password.
Host ``https://track.customer.io`` (``accountRegion: US``) or ``https://track-eu.customer.io``
(``EU``); ``endpoint`` overrides it. One change goes to ``POST /api/v2/entity``; several go to
``POST /api/v2/batch`` (``{"batch": [...]}``, at most 500 KB per request and 32 KB per entity,
Customer.io's limits); an entity over 32 KB is dropped alone (``ENTITY_TOO_LARGE``).

Identity: the Segment ``userId`` as ``identifiers.id`` (``cio_id`` when it starts with
``cio_``, ``email`` when it is an email address), else the email. Identify sends
``{"type":"person","action":"identify","identifiers":{...},"attributes":{<traits>}}``; a track
sends ``action: "event"`` with the event ``name``, the message id as ``id`` (deduplication),
a unix ``timestamp`` and the properties as ``attributes``.

Answers: 200 delivers; a batch answered 207 lists failed entities in
``errors[{batch_index, reason, field, message}]``: those are dropped, the rest delivered;
401 pauses the destination; 429 and 5xx retry.
"""

from __future__ import annotations

import re
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
    basic,
    epoch_s,
    event_time,
    invalid,
    is_track,
    size_groups,
    text,
)

HOSTS = {"US": "https://track.customer.io", "EU": "https://track-eu.customer.io"}
MAX_BATCH = 100
MAX_BATCH_BYTES = 500 * 1024
MAX_ENTITY_BYTES = 32 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class CustomerIoSettings(DestinationSettings):
    siteId: str = Field(min_length=1, description="The workspace's Site ID (Track API credentials).")
    apiKey: SecretStr = Field(description="The workspace's Track API key.")
    accountRegion: Literal["US", "EU"] = Field(default="US", description="Where the workspace lives.")

    @field_validator("apiKey")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("apiKey must not be empty")
        return value

    @property
    def host(self) -> str:
        return (self.endpoint or HOSTS[self.accountRegion]).rstrip("/")


DEFAULT_MAPPINGS: dict[str, Any] = {
    "id": "$.userId",
    "email": EMAIL,
    "traits": "$.traits",
    "event_name": "$.event",
    "event_id": "$.messageId",
    "properties": "$.properties",
    "timestamp": "$.timestamp",
}


def identifiers(item: Item) -> dict[str, str]:
    person = text(item.fields.get("id"))
    if person is not None:
        if person.startswith("cio_"):
            return {"cio_id": person[4:]}
        if _EMAIL.match(person):
            return {"email": person}
        return {"id": person}
    email = text(item.fields.get("email"))
    if email is not None:
        return {"email": email}
    raise invalid("Customer.io needs a userId or an email; the message has neither", code="MISSING_IDENTIFIER")


def entity(item: Item) -> dict[str, Any]:
    ids = identifiers(item)
    when = epoch_s(event_time(item, item.fields.get("timestamp")))
    if is_track(item):
        name = text(item.fields.get("event_name"))
        if name is None:
            raise invalid("a Customer.io event needs a name", code="MISSING_EVENT_NAME")
        out: dict[str, Any] = {"type": "person", "action": "event", "identifiers": ids, "name": name[:100]}
        if text(item.fields.get("event_id")):
            out["id"] = text(item.fields["event_id"])
        out.update({"timestamp": when, "attributes": as_dict(item.fields.get("properties"))})
    else:
        out = {"type": "person", "action": "identify", "identifiers": ids,
               "attributes": as_dict(item.fields.get("traits")), "timestamp": when}
    if len(dumps(out)) > MAX_ENTITY_BYTES:
        raise invalid("Customer.io takes at most 32 KB per entity", code="ENTITY_TOO_LARGE")
    return out


def _headers(settings: CustomerIoSettings) -> dict[str, str]:
    return {"Authorization": basic(settings.siteId, settings.apiKey.get_secret_value()),
            "Content-Type": "application/json", "User-Agent": "traitsync (customerio)"}


def build(items: Sequence[Item], settings: CustomerIoSettings) -> list[Request]:
    entities = [entity(item) for item in items]
    requests = []
    for group in size_groups(range(len(entities)), lambda i: len(dumps(entities[i])), max_items=MAX_BATCH,
                             max_bytes=MAX_BATCH_BYTES, overhead=16):
        if len(group) == 1:
            requests.append(Request("POST", f"{settings.host}/api/v2/entity", dumps(entities[group[0]]), group,
                                    _headers(settings), authorize=False))
        else:
            body = dumps({"batch": [entities[i] for i in group]})
            requests.append(Request("POST", f"{settings.host}/api/v2/batch", body, group, _headers(settings),
                                    authorize=False))
    return requests


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    outcome = status_outcome(response)
    if response.status != 207 or response.error is not None:
        return [outcome] * len(items)
    data = response.json()
    failed: dict[int, Outcome] = {}
    for error in (data.get("errors") or []) if isinstance(data, dict) else []:
        if isinstance(error, dict) and isinstance(error.get("batch_index"), int):
            reason = str(error.get("reason") or "invalid")
            detail = " ".join(str(error[k]) for k in ("field", "message") if error.get(k))[:200] or None
            failed[error["batch_index"]] = Outcome.drop(reason, detail)
    return [failed.get(i, Outcome.ok()) for i in range(len(items))]


def check(settings: CustomerIoSettings, _token: object) -> Request:
    return Request("GET", f"{settings.host}/auth", headers=_headers(settings), authorize=False, purpose="check")


DESTINATION: Destination[CustomerIoSettings] = Destination(
    name="Customer.io",
    slug="customerio",
    settings_model=CustomerIoSettings,
    build=build,
    classify=classify,
    default_rate=30.0,
    max_batch=MAX_BATCH,
    event_types=frozenset({"identify", "track"}),
    default_mappings=DEFAULT_MAPPINGS,
    check=check,
    description="Customer.io Track API v2 (entity / batch): person attributes and events.",
)
