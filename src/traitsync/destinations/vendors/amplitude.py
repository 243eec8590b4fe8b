"""Amplitude: tracks -> events (HTTP API v2 ``/2/httpapi``), identifies -> user properties
(``/identify``).

The project's API key travels inside the body (``api_key`` in the JSON of ``/2/httpapi``, a form
field of ``/identify``), as Amplitude's ingestion APIs require. Host ``https://api2.amplitude.com``
(``region: north_america``) or ``https://api.eu.amplitude.com`` (``europe``); ``endpoint``
overrides it.

* track (Audience Entered / Exited, Trait Computed): ``POST /2/httpapi`` with
  ``{"api_key", "events": [{"user_id", "device_id"?, "event_type", "time" (ms), "event_properties",
  "insert_id"}]}``; ``insert_id`` is the message id, so a retry never counts twice. Up to 2,000
  events and 1 MB per request.
* identify (traits, audience booleans): ``POST /identify`` form ``api_key=...&identification=
  [{"user_id", "user_properties": {"$set": {...}}}]``, up to 2,000 per request and 1 MB.

Identity: ``user_id`` (Segment ``userId``) and/or ``device_id`` (``anonymousId``); Amplitude
refuses ids shorter than 5 characters unless ``min_id_length`` is lowered.

Answers: a 400 listing events (``events_with_invalid_fields`` / ``events_with_missing_fields``
/ ``silenced_events``) drops those and resends the rest, as Amplitude recommends; a 429 retries
every event, those in ``throttled_events`` after 30 s (Amplitude throttles one user above 30
events/s); 413 means too large (the batch is split by size before sending, so it is retried
smaller only if it recurs); 5xx retry.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import urlencode

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
    as_dict,
    epoch_ms,
    event_time,
    invalid,
    is_track,
    size_groups,
    text,
)

HOSTS = {"north_america": "https://api2.amplitude.com", "europe": "https://api.eu.amplitude.com"}
MAX_EVENTS = 2000
MAX_BYTES = 1024 * 1024
THROTTLE_WAIT_S = 30.0


class AmplitudeSettings(DestinationSettings):
    apiKey: SecretStr = Field(description="The Amplitude project's API key.")
    region: Literal["north_america", "europe"] = Field(default="north_america",
                                                       description="Amplitude data center.")
    min_id_length: int | None = Field(default=None, ge=1, le=5, description="Accept user/device ids shorter "
                                      "than Amplitude's default 5 characters.")

    @field_validator("apiKey")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("apiKey must not be empty")
        return value

    @property
    def host(self) -> str:
        return (self.endpoint or HOSTS[self.region]).rstrip("/")


DEFAULT_MAPPINGS: dict[str, Any] = {
    "user_id": "$.userId",
    "device_id": "$.anonymousId",
    "user_properties": "$.traits",
    "event_type": "$.event",
    "event_properties": "$.properties",
    "insert_id": "$.messageId",
    "time": "$.timestamp",
}


def _ids(item: Item) -> dict[str, str]:
    out = {k: v for k in ("user_id", "device_id") if (v := text(item.fields.get(k))) is not None}
    if not out:
        raise invalid("Amplitude needs a user_id or a device_id; the message has neither",
                      code="MISSING_IDENTIFIER")
    return out


def event(item: Item) -> dict[str, Any]:
    name = text(item.fields.get("event_type"))
    if name is None:
        raise invalid("an Amplitude event needs an event_type", code="MISSING_EVENT_NAME")
    out: dict[str, Any] = {**_ids(item), "event_type": name,
                           "time": epoch_ms(event_time(item, item.fields.get("time"))),
                           "event_properties": as_dict(item.fields.get("event_properties"))}
    if text(item.fields.get("insert_id")):
        out["insert_id"] = text(item.fields["insert_id"])
    return out


def identification(item: Item) -> dict[str, Any]:
    props = {k: v for k, v in as_dict(item.fields.get("user_properties")).items()}
    return {**_ids(item), "user_properties": {"$set": props}}


def build(items: Sequence[Item], settings: AmplitudeSettings) -> list[Request]:
    key = settings.apiKey.get_secret_value()
    events = {i: event(it) for i, it in enumerate(items) if is_track(it)}
    people = {i: identification(it) for i, it in enumerate(items) if not is_track(it)}
    requests: list[Request] = []
    options = {"options": {"min_id_length": settings.min_id_length}} if settings.min_id_length else {}
    for group in size_groups(list(events), lambda i: len(dumps(events[i])), max_items=MAX_EVENTS,
                             max_bytes=MAX_BYTES, overhead=128):
        body = dumps({"api_key": key, "events": [events[i] for i in group], **options})
        requests.append(Request("POST", f"{settings.host}/2/httpapi", body, group,
                                {"Content-Type": "application/json", "Accept": "*/*"}, authorize=False))
    for group in size_groups(list(people), lambda i: len(dumps(people[i])) * 3, max_items=MAX_EVENTS,
                             max_bytes=MAX_BYTES, overhead=128):
        form = urlencode({"api_key": key, "identification": json.dumps([people[i] for i in group],
                                                                        separators=(",", ":"))})
        requests.append(Request("POST", f"{settings.host}/identify", form.encode("ascii"), group,
                                {"Content-Type": "application/x-www-form-urlencoded"}, authorize=False,
                                purpose="identify"))
    return requests


def _indices(data: dict[str, Any], *keys: str) -> set[int]:
    out: set[int] = set()
    for key in keys:
        value = data.get(key)
        groups = value.values() if isinstance(value, dict) else [value] if isinstance(value, list) else []
        for group in groups:
            out.update(i for i in group if isinstance(i, int))
    return out


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    outcome = status_outcome(response)
    data = response.json()
    if response.error is not None or not isinstance(data, dict) or not all(is_track(i) for i in items):
        return [outcome] * len(items)
    if response.status == 400:
        bad = _indices(data, "events_with_invalid_fields", "events_with_missing_fields", "silenced_events")
        if bad:
            reason = str(data.get("error") or "invalid event")[:200]
            return [Outcome.drop("400", reason) if i in bad else Outcome.retry(code="BATCH_NEIGHBOUR_REJECTED")
                    for i in range(len(items))]
    if response.status == 429:
        throttled = _indices(data, "throttled_events")
        return [Outcome.retry(THROTTLE_WAIT_S if i in throttled else None, "429") for i in range(len(items))]
    return [outcome] * len(items)


DESTINATION: Destination[AmplitudeSettings] = Destination(
    name="Amplitude",
    slug="amplitude",
    settings_model=AmplitudeSettings,
    build=build,
    classify=classify,
    default_rate=50.0,
    max_batch=MAX_EVENTS,
    event_types=frozenset({"identify", "track"}),
    default_mappings=DEFAULT_MAPPINGS,
    description="Amplitude HTTP API v2 events and /identify user properties.",
)
