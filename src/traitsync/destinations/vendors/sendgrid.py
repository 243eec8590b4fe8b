"""SendGrid Marketing Campaigns contacts: identify -> ``PUT /v3/marketing/contacts`` (upsert).

Auth is ``Authorization: Bearer <API key>``; host ``https://api.sendgrid.com`` (or
``https://api.eu.sendgrid.com`` with ``region: eu``); ``endpoint`` overrides it. SendGrid's
Marketing API has no event endpoint, so only identify changes are sent (tracks are filtered as
unsupported). Contacts are keyed by email (``external_id`` when mapped); computed traits and
audience booleans are written to custom fields, which SendGrid keys by field **id**: the
``custom_fields`` setting maps a trait or audience key to its field id (``e1_T``, ``w2_N``...);
keys without a field are not written. ``list_ids`` adds every upserted contact to those lists.

One request carries up to 1,000 contacts (SendGrid takes 30,000 or 6 MB; smaller requests keep
one bad contact from holding many back). The answer is ``202 {"job_id"}``: the upsert is
queued. A ``400`` refuses the whole request when one contact is invalid
(``errors[{field, message}]`` naming it by position or email); that contact is dropped and the
others are sent again without it. 429 retries after ``X-RateLimit-Reset``; 401/403 pause.
"""

from __future__ import annotations

import re
import time
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
from traitsync.destinations.vendors._engage import EMAIL, as_dict, invalid, size_groups, text, with_retry_after

HOSTS = {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
MAX_CONTACTS = 1000
MAX_BYTES = 6 * 1024 * 1024
_INDEX = re.compile(r"contacts\[(\d+)\]")
STANDARD = ("first_name", "last_name", "address_line_1", "address_line_2", "city", "state_province_region",
            "postal_code", "country", "phone_number")


class SendgridSettings(DestinationSettings):
    sendGridApiKey: SecretStr = Field(description="An API key with Marketing contacts write access.")
    region: Literal["global", "eu"] = Field(default="global", description="global or eu (EU subusers).")
    custom_fields: dict[str, str] = Field(default_factory=dict, description="Trait or audience key -> SendGrid "
                                          "custom field id (e1_T, w2_N...).")
    list_ids: list[str] = Field(default_factory=list, description="Lists every upserted contact joins.")

    @field_validator("sendGridApiKey")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("sendGridApiKey must not be empty")
        return value

    @property
    def host(self) -> str:
        return (self.endpoint or HOSTS[self.region]).rstrip("/")


DEFAULT_MAPPINGS: dict[str, Any] = {
    "email": EMAIL,
    "first_name": "$.traits.first_name",
    "last_name": "$.traits.last_name",
    "traits": "$.traits",
}


def contact(item: Item, settings: SendgridSettings) -> dict[str, Any]:
    email = text(item.fields.get("email"))
    external = text(item.fields.get("external_id"))
    if email is None and external is None:
        raise invalid("SendGrid contacts need an email (or a mapped external_id)", code="MISSING_EMAIL")
    out: dict[str, Any] = {}
    if email is not None:
        out["email"] = email.strip().lower()
    if external is not None:
        out["external_id"] = external
    for name in STANDARD:
        if text(item.fields.get(name)) is not None:
            out[name] = text(item.fields[name])
    traits = as_dict(item.fields.get("traits"))
    custom = {field_id: traits[key] for key, field_id in settings.custom_fields.items() if key in traits}
    if custom:
        out["custom_fields"] = {k: (1 if v is True else 0 if v is False else v) for k, v in custom.items()}
    return out


def _headers(settings: SendgridSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.sendGridApiKey.get_secret_value()}",
            "Content-Type": "application/json", "User-Agent": "traitsync (sendgrid)"}


def build(items: Sequence[Item], settings: SendgridSettings) -> list[Request]:
    contacts = [contact(item, settings) for item in items]
    extra = {"list_ids": settings.list_ids} if settings.list_ids else {}
    return [Request("PUT", f"{settings.host}/v3/marketing/contacts",
                    dumps({**extra, "contacts": [contacts[i] for i in group]}), group, _headers(settings),
                    authorize=False)
            for group in size_groups(range(len(contacts)), lambda i: len(dumps(contacts[i])),
                                     max_items=MAX_CONTACTS, max_bytes=MAX_BYTES, overhead=256)]


def _reset_in(response: Response) -> float | None:
    raw = response.header("x-ratelimit-reset")
    try:
        return max(0.0, float(raw) - time.time()) if raw else None
    except ValueError:
        return None


def classify(response: Response, items: Sequence[Item]) -> list[Outcome]:
    outcome = with_retry_after(status_outcome(response), _reset_in(response))
    if response.status != 400 or response.error is not None:
        return [outcome] * len(items)
    data = response.json()
    errors = data.get("errors") if isinstance(data, dict) else None
    emails = {(text(i.fields.get("email")) or "").strip().lower(): n for n, i in enumerate(items)}
    bad: dict[int, str] = {}
    for error in errors if isinstance(errors, list) else []:
        if not isinstance(error, dict):
            continue
        where = _INDEX.search(str(error.get("field") or ""))
        message = str(error.get("message") or "invalid")
        if where and int(where.group(1)) < len(items):
            bad[int(where.group(1))] = message
            continue
        for email, n in emails.items():
            if email and email in message.lower():
                bad[n] = message
    if not bad:
        return [outcome] * len(items)
    return [Outcome.drop("400", bad[n][:200]) if n in bad else Outcome.retry(code="BATCH_NEIGHBOUR_REJECTED")
            for n in range(len(items))]


def check(settings: SendgridSettings, _token: object) -> Request:
    return Request("GET", f"{settings.host}/v3/marketing/field_definitions", headers=_headers(settings),
                   authorize=False, purpose="check")


DESTINATION: Destination[SendgridSettings] = Destination(
    name="Sendgrid",
    slug="sendgrid",
    settings_model=SendgridSettings,
    build=build,
    classify=classify,
    default_rate=100.0,
    max_batch=MAX_CONTACTS,
    event_types=frozenset({"identify"}),
    default_mappings=DEFAULT_MAPPINGS,
    check=check,
    description="SendGrid Marketing contacts upsert (PUT /v3/marketing/contacts) with custom fields.",
)
