"""Intercom: contacts found by search then updated or created; tracks as data events.

Auth: an access token as ``Authorization: Bearer`` with ``Intercom-Version`` pinning the API
version. Regional hosts: US ``api.intercom.io``, EU ``api.eu.intercom.io``, AU ``api.au.intercom.io``.

- identify: ``POST /contacts/search {query:{field:"external_id"|"email", operator:"=", value}}``;
  exactly one match -> ``PUT /contacts/{id}``, none -> ``POST /contacts`` (``role:"user"`` with
  ``external_id``, or ``role:"lead"`` from an email alone). Audience booleans and trait values go to
  ``custom_attributes`` (data attributes that must exist in the workspace).
- track: ``POST /events {event_name, created_at, user_id | email, metadata}`` (202): Intercom
  keeps at most 10 metadata keys.

409 (a contact created moments ago is not in search yet) and 429 are retried; 429 waits until
``X-RateLimit-Reset``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import Field, SecretStr

from traitsync.destinations.auth import Token
from traitsync.destinations.base import (
    Destination,
    DestinationSettings,
    Exchange,
    Item,
    Outcome,
    Request,
    Response,
    dumps,
    status_outcome,
)
from traitsync.destinations.vendors._computation import EMAIL_MAPPING, change_of, scalar, text, unix_seconds

HOSTS = {"US": "https://api.intercom.io", "EU": "https://api.eu.intercom.io", "AU": "https://api.au.intercom.io"}
STANDARD = {"email", "name", "phone"}
MAX_METADATA = 10


class IntercomSettings(DestinationSettings):
    access_token: SecretStr = Field(description="Access token of your Intercom app (Developer Hub > "
                                    "Authentication).")
    region: Literal["US", "EU", "AU"] = Field(default="US", description="Where your workspace is hosted.")
    api_version: str = Field(default="2.11", pattern=r"^(\d+\.\d+|Unstable)$",
                             description="Intercom-Version header.")

    @property
    def base(self) -> str:
        return (self.endpoint or HOSTS[self.region]).rstrip("/")


def _request(settings: IntercomSettings, method: str, path: str, body: Any, index: int,
             purpose: str = "send") -> Request:
    return Request(method, f"{settings.base}{path}", dumps(body), (index,), headers={
        "Authorization": f"Bearer {settings.access_token.get_secret_value()}",
        "Intercom-Version": settings.api_version, "Content-Type": "application/json",
        "Accept": "application/json"}, purpose=purpose)


def answer_outcome(response: Response, *, now: float | None = None) -> Outcome:
    base = status_outcome(response)
    if base.kind == "ok":
        return base
    data = response.json()
    errors = data.get("errors") if isinstance(data, dict) else None
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    code = str(first.get("code") or base.code or response.status)
    message = first.get("message")
    if response.status == 409:
        return Outcome.retry(code="409", message=message)
    if response.status == 429:
        reset = response.header("x-ratelimit-reset")
        wait = base.retry_after
        if wait is None and reset and reset.isdigit():
            wait = max(0.0, float(reset) - (time.time() if now is None else now))
        return Outcome.retry(wait, "429", message)
    if base.kind == "drop":
        return Outcome.drop(code, message)
    return base


def contact_body(item: Item, external_id: str | None, email: str | None) -> dict[str, Any]:
    change = change_of(item.message)
    attributes = {change.key: change.value} if change.is_track and change.key else change.attributes
    body: dict[str, Any] = {}
    for key in ("name", "phone"):
        if text(attributes.get(key)):
            body[key] = text(attributes.get(key))
    body["custom_attributes"] = {str(k): scalar(v) for k, v in attributes.items() if k not in STANDARD}
    return body


def event_body(item: Item, external_id: str | None, email: str | None) -> dict[str, Any]:
    change = change_of(item.message)
    props = item.message.get("properties") or {}
    metadata = {str(k): scalar(v) for k, v in props.items() if k != "email"}
    body: dict[str, Any] = {"event_name": change.event, "created_at": unix_seconds(item.message)}
    if external_id:
        body["user_id"] = external_id
    else:
        body["email"] = email
    body["metadata"] = dict(list(metadata.items())[:MAX_METADATA])
    return body


def exchange(items: Sequence[Item], settings: IntercomSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    for i, item in enumerate(items):
        external_id = text(item.fields.get("external_id"))
        email = text(item.fields.get("email"))
        if external_id is None and email is None:
            outcomes.append(Outcome.drop("MISSING_IDENTIFIER", "Intercom needs a userId (external_id) or an email"))
            continue
        if item.type == "track":
            answer = yield _request(settings, "POST", "/events", event_body(item, external_id, email), i)
            outcomes.append(answer_outcome(answer))
            continue
        field, value = ("external_id", external_id) if external_id else ("email", email)
        query = {"query": {"field": field, "operator": "=", "value": value}}
        found = yield _request(settings, "POST", "/contacts/search", query, i, purpose="lookup")
        if not found.ok:
            outcomes.append(answer_outcome(found))
            continue
        data = found.json()
        hits = data.get("data") if isinstance(data, dict) else None
        if not isinstance(hits, list):
            outcomes.append(Outcome.retry(code="INTERCOM_BAD_ANSWER", message="search answer has no data"))
            continue
        body = contact_body(item, external_id, email)
        if len(hits) == 1 and isinstance(hits[0], dict) and hits[0].get("id"):
            contact_id = str(hits[0]["id"])
            if email and not hits[0].get("email"):
                body = {"email": email, **body}
            answer = yield _request(settings, "PUT", f"/contacts/{contact_id}", body, i)
        else:
            created: dict[str, Any] = {"role": "user" if external_id else "lead"}
            if external_id:
                created["external_id"] = external_id
            if email:
                created["email"] = email
            answer = yield _request(settings, "POST", "/contacts", {**created, **body}, i)
        outcome = answer_outcome(answer)
        result = answer.json()
        if outcome.kind == "ok" and isinstance(result, dict) and result.get("id"):
            outcome = Outcome.ok({"contact_id": str(result["id"])})
        outcomes.append(outcome)
    return outcomes


def check(settings: IntercomSettings, token: Token | None) -> Request:
    return Request("GET", f"{settings.base}/me", headers={
        "Authorization": f"Bearer {settings.access_token.get_secret_value()}",
        "Intercom-Version": settings.api_version, "Accept": "application/json"}, purpose="check")


DESTINATION: Destination[IntercomSettings] = Destination(
    name="Intercom",
    slug="intercom",
    settings_model=IntercomSettings,
    exchange=exchange,
    default_rate=8.0,
    max_batch=10,
    event_types=frozenset({"identify", "track"}),
    default_mappings={"external_id": {"@first": ["$.userId"]}, "email": EMAIL_MAPPING},
    check=check,
    description="Update or create Intercom contacts with audience and trait custom attributes; tracks as events.",
)
