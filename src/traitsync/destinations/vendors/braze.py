"""Braze: identify -> user attributes, track -> custom events, both through ``POST /users/track``.

Auth is ``Authorization: Bearer <REST API key>`` (the key needs the ``users.track``
permission); ``endpoint`` is the workspace's regional REST host (``https://rest.iad-01.braze.com``,
``https://rest.fra-01.braze.eu``...). One request carries up to 75 objects across ``attributes``
and ``events`` (Braze's per-request limit); a batch of more goes out as several requests.

Each object is identified by ``external_id`` (the Segment ``userId``), else a ``user_alias``
(``anonymousId`` under the label ``anonymous_id``), else ``braze_id``, else ``email``; an item
with none is dropped before sending (Braze would reject it). Audiences on identify become a
boolean custom attribute named by the audience key; Audience Entered / Exited and Trait
Computed tracks become custom events with the Engage properties.

Answers: 2xx ``{"message": "success", "errors": [{"type", "input_array", "index"}]}`` lists
objects Braze refused (dropped: they would fail again; the rest are delivered); a 4xx listing
objects rejects the whole request, so the listed objects are dropped and the others retried
without them; 429 carries ``X-Ratelimit-Retry-After``, honoured before the next try.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

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
    event_time,
    invalid,
    is_track,
    iso,
    retry_header,
    size_groups,
    text,
    with_retry_after,
)

DEFAULT_ENDPOINT = "https://rest.iad-01.braze.com"
MAX_OBJECTS = 75
USER_AGENT = "traitsync (braze)"


class BrazeSettings(DestinationSettings):
    api_key: SecretStr = Field(description="A REST API key with the users.track permission.")
    app_id: str | None = Field(default=None, description="The app identifier sent with events (optional).")
    update_existing_only: bool = Field(default=False, description="Only update users Braze already knows "
                                       "(`_update_existing_only`); unknown external ids are not created.")

    @field_validator("endpoint")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("endpoint must be your Braze REST endpoint, e.g. https://rest.iad-01.braze.com")
        return value

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key must not be empty")
        return value


DEFAULT_MAPPINGS: dict[str, Any] = {
    "external_id": "$.userId",
    "user_alias": {"alias_name": "$.anonymousId", "alias_label": "anonymous_id"},
    "braze_id": "$.context.braze_id",
    "email": EMAIL,
    "attributes": "$.traits",
    "name": "$.event",
    "properties": "$.properties",
    "time": "$.timestamp",
}


def identifier(item: Item) -> dict[str, Any]:
    """The one Braze identifier for this item: external_id, user_alias, braze_id or email."""
    f = item.fields
    if text(f.get("external_id")):
        return {"external_id": text(f["external_id"])}
    alias = as_dict(f.get("user_alias"))
    if text(alias.get("alias_name")) and text(alias.get("alias_label")):
        return {"user_alias": {"alias_name": text(alias["alias_name"]), "alias_label": text(alias["alias_label"])}}
    if text(f.get("braze_id")):
        return {"braze_id": text(f["braze_id"])}
    if text(f.get("email")):
        return {"email": text(f["email"])}
    raise invalid("Braze needs external_id, user_alias, braze_id or email; the message has none",
                  code="MISSING_IDENTIFIER")


def braze_object(item: Item, settings: BrazeSettings) -> tuple[str, dict[str, Any]]:
    """(``attributes`` | ``events``, the object) for one item."""
    ident = identifier(item)
    extra = {"_update_existing_only": True} if settings.update_existing_only else {}
    if is_track(item):
        name = text(item.fields.get("name"))
        if name is None:
            raise invalid("a Braze event needs a name", code="MISSING_EVENT_NAME")
        event: dict[str, Any] = {**ident}
        if settings.app_id:
            event["app_id"] = settings.app_id
        event.update({"name": name, "time": iso(event_time(item, item.fields.get("time"))),
                      "properties": as_dict(item.fields.get("properties")), **extra})
        return "events", event
    attributes = {k: v for k, v in as_dict(item.fields.get("attributes")).items() if k not in ident}
    if "email" in ident:
        attributes.pop("email", None)
    return "attributes", {**ident, **attributes, **extra}


def _headers(settings: BrazeSettings, count: int) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
               "Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    if count > 1:
        headers["X-Braze-Batch"] = "true"
    return headers


def url(settings: BrazeSettings) -> str:
    return (settings.endpoint or DEFAULT_ENDPOINT).rstrip("/") + "/users/track"


def build(items: Sequence[Item], settings: BrazeSettings) -> list[Request]:
    objects = [braze_object(item, settings) for item in items]
    requests: list[Request] = []
    for group in size_groups(range(len(items)), lambda i: 0, max_items=MAX_OBJECTS):
        body: dict[str, list[dict[str, Any]]] = {}
        for i in group:
            array, obj = objects[i]
            body.setdefault(array, []).append(obj)
        requests.append(Request("POST", url(settings), dumps(body), group, _headers(settings, len(group)),
                                authorize=False))
    return requests


def _positions(items: Sequence[Item]) -> dict[tuple[str, int], int]:
    """(array, index in that array) -> position among ``items``, as ``build`` laid them out."""
    counters = {"attributes": 0, "events": 0}
    out: dict[tuple[str, int], int] = {}
    for i, item in enumerate(items):
        array = "events" if is_track(item) else "attributes"
        out[(array, counters[array])] = i
        counters[array] += 1
    return out


def _listed(response: Response, items: Sequence[Item]) -> dict[int, str]:
    data = response.json()
    errors = data.get("errors") if isinstance(data, dict) else None
    positions = _positions(items)
    listed: dict[int, str] = {}
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        try:
            key = (str(error.get("input_array")), int(error.get("index", -1)))
        except (TypeError, ValueError):
            continue
        if key in positions:
            listed[positions[key]] = str(error.get("type") or "rejected")
    return listed


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    outcome = with_retry_after(status_outcome(response), retry_header(response, "x-ratelimit-retry-after"))
    listed = _listed(response, items) if response.error is None else {}
    if outcome.kind == "ok":
        return [Outcome.drop("BRAZE_REJECTED", listed[i]) if i in listed else outcome for i in range(len(items))]
    if outcome.kind == "drop" and listed:
        # The whole request was refused because of the listed objects: resend the others alone.
        return [Outcome.drop("BRAZE_REJECTED", listed[i]) if i in listed
                else Outcome.retry(code="BATCH_NEIGHBOUR_REJECTED") for i in range(len(items))]
    return [outcome] * len(items)


DESTINATION: Destination[BrazeSettings] = Destination(
    name="Braze",
    slug="braze",
    settings_model=BrazeSettings,
    build=build,
    classify=classify,
    default_rate=100.0,
    max_batch=MAX_OBJECTS,
    timeout_s=30.0,
    event_types=frozenset({"identify", "track"}),
    default_mappings=DEFAULT_MAPPINGS,
    description="Braze user attributes and custom events via /users/track (75 objects per request).",
)
