"""HubSpot CRM: contacts upserted by email (a batch read, then batch update and batch create).

Auth: a private app's access token as ``Authorization: Bearer`` (scopes
``crm.objects.contacts.read`` and ``.write``). Each batch costs two calls per object kind, as
Engage counts HubSpot (5 objects/s at 2 calls per object, hence 10 requests/s):

1. ``POST /crm/v3/objects/contacts/batch/read {idProperty:"email", properties:["email"],
   inputs:[{id:<email>}]}``: 200, or 207 whose ``errors`` list the emails not found
   (``OBJECT_NOT_FOUND``).
2. ``POST /crm/v3/objects/contacts/batch/update {inputs:[{id:<hs_object_id>, properties}]}`` for the
   contacts found and ``POST /crm/v3/objects/contacts/batch/create {inputs:[{properties:{email,
   ...}}]}`` for the others (<= 100 inputs each).

Audience membership and trait values become contact properties named after their key (HubSpot
property names are lowercase; the property must exist). Values follow HubSpot's rules: booleans
as ``"true"``/``"false"``, lists joined with ``;``, objects as JSON text. Tracks write the same
property (custom behavioral events need a per-portal event definition and are not sent).

A 207 answer fails only the inputs its ``errors[].context.ids`` name; a 400 for a batch of
several inputs (one bad value rejects the whole batch) is replayed input by input in the same
exchange, so only the bad message fails. 409 on create (the contact appeared since the read) and
429 are retried.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import Field, SecretStr, field_validator

from traitsync.destinations.auth import Token
from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Exchange,
    Item,
    Outcome,
    Request,
    Response,
    chunks,
    dumps,
    status_outcome,
)
from traitsync.destinations.vendors._computation import EMAIL_MAPPING, change_of, text

BASE = "https://api.hubapi.com"
MAX_INPUTS = 100
CONTACTS = "/crm/v3/objects/contacts"


class HubSpotSettings(DestinationSettings):
    access_token: SecretStr = Field(description="Private app access token (pat-...), scopes "
                                    "crm.objects.contacts.read and crm.objects.contacts.write.")

    @field_validator("access_token")
    @classmethod
    def _not_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("access_token must not be empty")
        return value

    @property
    def base(self) -> str:
        return (self.endpoint or BASE).rstrip("/")


def property_value(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ";".join(str(property_value(v)) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return value


def properties_of(item: Item) -> dict[str, Any]:
    change = change_of(item.message)
    attributes = {change.key: change.value} if change.is_track and change.key else change.attributes
    return {str(k).lower(): property_value(v) for k, v in attributes.items() if str(k).lower() != "email"}


def _post(settings: HubSpotSettings, path: str, body: dict[str, Any], indices: tuple[int, ...],
          purpose: str = "send") -> Request:
    return Request("POST", f"{settings.base}{CONTACTS}{path}", dumps(body), indices,
                   headers={"Authorization": f"Bearer {settings.access_token.get_secret_value()}",
                            "Content-Type": "application/json", "Accept": "application/json"}, purpose=purpose)


def _errors(response: Response) -> list[dict[str, Any]]:
    data = response.json()
    errors = data.get("errors") if isinstance(data, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _error_outcome(error: dict[str, Any], status: int) -> Outcome:
    category = str(error.get("category") or error.get("status") or status)
    message = error.get("message")
    if category in ("RATE_LIMITS", "RATE_LIMIT") or status in (429, 500, 502, 503, 504):
        return Outcome.retry(code=category, message=message)
    if category == "CONFLICT" or status == 409:
        return Outcome.retry(code="CONFLICT", message=message)
    return Outcome.drop(category, message)


def whole_outcome(response: Response) -> Outcome:
    """A non-2xx answer for a whole request; HubSpot's ``category`` is the code when given."""
    base = status_outcome(response)
    if base.kind == "ok" or base.kind == "auth" or response.error is not None:
        return base
    data = response.json()
    category = data.get("category") if isinstance(data, dict) else None
    message = data.get("message") if isinstance(data, dict) else None
    if base.kind == "retry":
        return Outcome.retry(base.retry_after, str(category or base.code), message)
    if response.status == 409:
        return Outcome.retry(code="CONFLICT", message=message)
    return Outcome.drop(str(category or base.code), message)


def _write(settings: HubSpotSettings, path: str, inputs: list[dict[str, Any]], indices: tuple[int, ...],
           key_of: list[str]) -> Exchange:
    """Send one batch write; per-input outcomes from a 207, or replay one by one after a 400."""
    response = yield _post(settings, path, {"inputs": inputs}, indices)
    if response.status == 207:
        failed: dict[int, Outcome] = {}
        for error in _errors(response):
            ids = ((error.get("context") or {}).get("ids") or []) if isinstance(error.get("context"), dict) else []
            for raw in ids:
                for position, key in enumerate(key_of):
                    if key.lower() == str(raw).lower():
                        failed[position] = _error_outcome(error, 207)
        return [failed.get(p, Outcome.ok()) for p in range(len(indices))]
    outcome = whole_outcome(response)
    if outcome.kind == "drop" and response.status == 400 and len(inputs) > 1:
        outcomes: list[Outcome] = []
        for one, index, key in zip(inputs, indices, key_of, strict=True):
            outcomes.extend((yield from _write(settings, path, [one], (index,), [key])))
        return outcomes
    return [outcome] * len(indices)


def exchange(items: Sequence[Item], settings: HubSpotSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome | None] = [None] * len(items)
    emails: dict[int, str] = {}
    seen: set[str] = set()
    for i, item in enumerate(items):
        email = text(item.fields.get("email"))
        if email is None:
            outcomes[i] = Outcome.drop("MISSING_EMAIL", "HubSpot contacts are upserted by email; the message has none")
        elif email.lower() in seen:
            outcomes[i] = Outcome.unsent()  # the same contact twice in one batch: the later one goes next time
        else:
            seen.add(email.lower())
            emails[i] = email
    order = list(emails)
    for group in chunks(len(order), MAX_INPUTS):
        indices = tuple(order[j] for j in group)
        body = {"idProperty": "email", "properties": ["email"], "inputs": [{"id": emails[i]} for i in indices]}
        found = yield _post(settings, "/batch/read", body, indices, purpose="lookup")
        if found.status not in (200, 207):
            whole = whole_outcome(found)
            for i in indices:
                outcomes[i] = whole
            continue
        data = found.json()
        results = data.get("results") if isinstance(data, dict) else None
        ids: dict[str, str] = {}
        for result in results if isinstance(results, list) else []:
            email = str(((result.get("properties") or {}).get("email")) or "").lower()
            if email and result.get("id") is not None:
                ids[email] = str(result["id"])
        missing = {str(raw).lower() for e in _errors(found) if e.get("category") == "OBJECT_NOT_FOUND"
                   for raw in ((e.get("context") or {}).get("ids") or [])}
        updates = [i for i in indices if emails[i].lower() in ids]
        creates = [i for i in indices if emails[i].lower() not in ids and emails[i].lower() in missing]
        for i in indices:
            if i not in updates and i not in creates:
                outcomes[i] = Outcome.retry(code="HUBSPOT_LOOKUP", message="the read answered neither a contact "
                                            "nor OBJECT_NOT_FOUND for this email")
        if updates:
            keys = [ids[emails[i].lower()] for i in updates]
            inputs = [{"id": key, "properties": properties_of(items[i])} for key, i in zip(keys, updates, strict=True)]
            got = yield from _write(settings, "/batch/update", inputs, tuple(updates), keys)
            for i, outcome in zip(updates, got, strict=True):
                outcomes[i] = outcome
        if creates:
            inputs = [{"properties": {"email": emails[i], **properties_of(items[i])}} for i in creates]
            got = yield from _write(settings, "/batch/create", inputs, tuple(creates), [emails[i] for i in creates])
            for i, outcome in zip(creates, got, strict=True):
                outcomes[i] = outcome
    return [o if o is not None else Outcome.unsent() for o in outcomes]


def check(settings: HubSpotSettings, token: Token | None) -> Request:
    return Request("GET", f"{settings.base}{CONTACTS}?limit=1&properties=email",
                   headers={"Authorization": f"Bearer {settings.access_token.get_secret_value()}"}, purpose="check")


DESTINATION: Destination[HubSpotSettings] = Destination(
    name="HubSpot",
    slug="hubspot",
    settings_model=HubSpotSettings,
    exchange=exchange,
    default_rate=10.0,
    max_batch=MAX_INPUTS,
    event_types=frozenset({"identify", "track"}),
    default_mappings={"email": EMAIL_MAPPING},
    check=check,
    description="Upsert HubSpot contacts by email with audience and computed-trait properties.",
)
