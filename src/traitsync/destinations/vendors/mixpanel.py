"""Mixpanel: tracks -> events through ``/import``, identifies -> user profile ``$set`` through ``/engage``.

* ``POST /import?strict=1`` (JSON array of ``{"event", "properties": {"time" (ms), "distinct_id",
  "$insert_id", ...}}``), up to 2,000 events and 2 MB per request. Auth is HTTP Basic: a service
  account (``serviceAccountUsername`` / ``serviceAccountSecret`` with ``projectId``), else the
  project's ``apiSecret`` as user name, else the ``projectToken`` as user name (all three are
  what Mixpanel accepts). ``$insert_id`` is the message id (hashed to 32 hex characters when it
  does not fit Mixpanel's 36-character rule), so retries never import an event twice.
* ``POST /engage?verbose=1`` (JSON array of ``{"$token", "$distinct_id", "$set": {...}}``), up to
  2,000 updates per request; the project token authenticates it.

Host ``https://api.mixpanel.com``, ``https://api-eu.mixpanel.com`` or ``https://api-in.mixpanel.com``
by ``apiRegion``; ``endpoint`` overrides it. ``distinct_id`` is the Segment ``userId``, else
the ``anonymousId``.

Answers: ``/import`` with ``strict=1`` answers 400 listing ``failed_records[{index, field,
message}]``: those are dropped, the rest were imported (delivered). ``/engage`` answers
``{"status": 0, "error"}`` when it refused the batch. 429 and 5xx retry (Mixpanel asks for
backoff from 2 s), 401/403 pause.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator

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
    basic,
    epoch_ms,
    event_time,
    invalid,
    is_track,
    size_groups,
    text,
)

HOSTS = {"US": "https://api.mixpanel.com", "EU": "https://api-eu.mixpanel.com", "IN": "https://api-in.mixpanel.com"}
MAX_BATCH = 2000
MAX_IMPORT_BYTES = 2 * 1024 * 1024
_INSERT_ID = re.compile(r"^[A-Za-z0-9-]{1,36}$")
PLACEHOLDERS = frozenset({"", "0", "-1", "null", "none", "undefined", "anonymous", "nil", "[]", "{}", "lmy47d",
                          "00000000-0000-0000-0000-000000000000"})


class MixpanelSettings(DestinationSettings):
    projectToken: SecretStr = Field(description="The project token (authenticates /engage).")
    apiSecret: SecretStr | None = Field(default=None, description="The project API secret (Basic auth of /import).")
    serviceAccountUsername: str | None = Field(default=None, description="Service account for /import.")
    serviceAccountSecret: SecretStr | None = Field(default=None, description="Its secret.")
    projectId: str | None = Field(default=None, description="Project id (required with a service account).")
    apiRegion: Literal["US", "EU", "IN"] = Field(default="US", description="Where the project's data lives.")

    @model_validator(mode="after")
    def _service_account(self) -> MixpanelSettings:
        if (self.serviceAccountUsername is None) != (self.serviceAccountSecret is None):
            raise ValueError("serviceAccountUsername and serviceAccountSecret go together")
        if self.serviceAccountUsername and not self.projectId:
            raise ValueError("projectId is required with a service account")
        if not self.projectToken.get_secret_value().strip():
            raise ValueError("projectToken must not be empty")
        return self

    @property
    def host(self) -> str:
        return (self.endpoint or HOSTS[self.apiRegion]).rstrip("/")

    def import_auth(self) -> str:
        if self.serviceAccountUsername and self.serviceAccountSecret is not None:
            return basic(self.serviceAccountUsername, self.serviceAccountSecret.get_secret_value())
        if self.apiSecret is not None:
            return basic(self.apiSecret.get_secret_value(), "")
        return basic(self.projectToken.get_secret_value(), "")


DEFAULT_MAPPINGS: dict[str, Any] = {
    "distinct_id": {"@first": ["$.userId", "$.anonymousId"]},
    "event": "$.event",
    "properties": "$.properties",
    "traits": "$.traits",
    "time": "$.timestamp",
    "insert_id": "$.messageId",
}


def distinct_id(item: Item) -> str:
    value = text(item.fields.get("distinct_id"))
    if value is None or value.strip().lower() in PLACEHOLDERS:
        raise invalid("Mixpanel needs a real distinct_id (userId or anonymousId)", code="MISSING_IDENTIFIER")
    return value


def insert_id(item: Item) -> str:
    raw = text(item.fields.get("insert_id")) or text(item.message.get("messageId")) or ""
    if _INSERT_ID.match(raw) and raw.lower() not in PLACEHOLDERS:
        return raw
    return hashlib.md5(raw.encode("utf-8")).hexdigest()


def event(item: Item) -> dict[str, Any]:
    name = text(item.fields.get("event"))
    if name is None:
        raise invalid("a Mixpanel event needs a name", code="MISSING_EVENT_NAME")
    props = {**as_dict(item.fields.get("properties")), "time": epoch_ms(event_time(item, item.fields.get("time"))),
             "distinct_id": distinct_id(item), "$insert_id": insert_id(item)}
    return {"event": name, "properties": props}


def profile(item: Item, token: str) -> dict[str, Any]:
    return {"$token": token, "$distinct_id": distinct_id(item), "$set": as_dict(item.fields.get("traits"))}


def build(items: Sequence[Item], settings: MixpanelSettings) -> list[Request]:
    events = {i: event(it) for i, it in enumerate(items) if is_track(it)}
    token = settings.projectToken.get_secret_value()
    profiles = {i: profile(it, token) for i, it in enumerate(items) if not is_track(it)}
    query = "strict=1" + (f"&project_id={settings.projectId}" if settings.projectId else "")
    requests: list[Request] = []
    headers = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "traitsync (mixpanel)"}
    for group in size_groups(list(events), lambda i: len(dumps(events[i])), max_items=MAX_BATCH,
                             max_bytes=MAX_IMPORT_BYTES, overhead=2):
        requests.append(Request("POST", f"{settings.host}/import?{query}", dumps([events[i] for i in group]), group,
                                {**headers, "Authorization": settings.import_auth()}, authorize=False))
    for group in size_groups(list(profiles), lambda i: 0, max_items=MAX_BATCH):
        requests.append(Request("POST", f"{settings.host}/engage?verbose=1", dumps([profiles[i] for i in group]),
                                group, headers, authorize=False, purpose="engage"))
    return requests


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    outcome = status_outcome(response)
    data = response.json()
    if response.error is not None or not isinstance(data, dict):
        return [outcome] * len(items)
    if all(is_track(i) for i in items):
        failed = data.get("failed_records")
        if response.status == 400 and isinstance(failed, list) and failed:
            bad = {int(r["index"]): f"{r.get('field', '')}: {r.get('message', '')}"[:200]
                   for r in failed if isinstance(r, dict) and isinstance(r.get("index"), int)}
            return [Outcome.drop("400", bad[i]) if i in bad else Outcome.ok() for i in range(len(items))]
        return [outcome] * len(items)
    if outcome.kind == "ok" and data.get("status") == 0:
        return [Outcome.drop("ENGAGE_REJECTED", str(data.get("error") or "")[:200] or None)] * len(items)
    return [outcome] * len(items)


DESTINATION: Destination[MixpanelSettings] = Destination(
    name="Mixpanel",
    slug="mixpanel",
    settings_model=MixpanelSettings,
    build=build,
    classify=classify,
    default_rate=50.0,
    max_batch=MAX_BATCH,
    event_types=frozenset({"identify", "track"}),
    default_mappings=DEFAULT_MAPPINGS,
    description="Mixpanel /import events (2,000 per request) and /engage profile $set.",
)
