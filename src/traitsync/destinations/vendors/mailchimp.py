"""Mailchimp Marketing API: audience members upserted by email, audiences as member tags,
computed traits as merge fields, tracks as member events.

Auth is HTTP Basic with any user name and the API key as password; the key ends in its data
center (``...-us6``), which picks the host ``https://us6.api.mailchimp.com/3.0`` (``endpoint``
overrides the host). Every request names a member by ``subscriber_hash``, the MD5 of the
lowercased email, so a change without an email is not sent (``MISSING_EMAIL``).

What each change does (one exchange per change; Mailchimp allows 10 concurrent connections and
Engage caps it at 10 requests/second):

* identify, audience: ``PUT /lists/{listId}/members/{hash}`` (upsert, ``status_if_new``), then
  ``POST .../members/{hash}/tags`` with ``{"tags":[{"name": <audience key>, "status": "active"|"inactive"}]}``;
* identify, computed trait: the upsert, with ``merge_fields`` for traits the ``merge_fields``
  setting maps to a merge tag (Mailchimp refuses unknown merge tags);
* track (Audience Entered / Exited, Trait Computed): ``POST .../members/{hash}/events`` with the
  event name made Mailchimp-safe (``Audience_Entered``) and string property values; when
  Mailchimp answers 404 (no such member yet) the member is upserted and the event sent again.

Errors are RFC 7807 problem documents; 429 retries, 401/403 pause, other 4xx drop with the
problem's ``title``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from typing import Any, Literal

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
    dumps,
    status_outcome,
)
from traitsync.destinations.vendors._engage import EMAIL, as_dict, basic, event_time, invalid, is_track, iso, text

_DC = re.compile(r"-([a-z]{2,4}\d{1,3})$")


class MailchimpSettings(DestinationSettings):
    apiKey: SecretStr = Field(description="A Marketing API key; its suffix (-us6) is the data center.")
    listId: str = Field(min_length=1, description="The audience (list) id members are kept in.")
    status_if_new: Literal["subscribed", "pending", "unsubscribed", "transactional"] = Field(
        default="subscribed", description="Status of members created by traitsync (pending = double opt-in).")
    merge_fields: dict[str, str] = Field(default_factory=dict, description="Computed trait key -> merge tag "
                                         "(e.g. ltv_180d: LTV); traits not listed are not written.")

    @field_validator("apiKey")
    @classmethod
    def _dc(cls, value: SecretStr) -> SecretStr:
        if not _DC.search(value.get_secret_value()):
            raise ValueError("apiKey must end in its data center, e.g. 0123abcd-us6")
        return value

    @field_validator("merge_fields")
    @classmethod
    def _tags(cls, value: dict[str, str]) -> dict[str, str]:
        for key, tag in value.items():
            if not re.fullmatch(r"[A-Z0-9_]{1,10}", tag):
                raise ValueError(f"merge_fields.{key}: {tag!r} is not a merge tag (A-Z, 0-9, _; up to 10)")
        return value

    @property
    def base(self) -> str:
        match = _DC.search(self.apiKey.get_secret_value())
        dc = match.group(1) if match else "us1"
        return (self.endpoint or f"https://{dc}.api.mailchimp.com").rstrip("/") + "/3.0"


DEFAULT_MAPPINGS: dict[str, Any] = {
    "email": EMAIL,
    "traits": "$.traits",
    "name": "$.event",
    "properties": "$.properties",
    "occurred_at": "$.timestamp",
    "computation_key": "$.context.personas.computation_key",
    "computation_class": "$.context.personas.computation_class",
}


def subscriber_hash(email: str) -> str:
    return hashlib.md5(email.strip().lower().encode("utf-8")).hexdigest()  # Mailchimp's id, not a privacy hash


def _headers(settings: MailchimpSettings) -> dict[str, str]:
    return {"Authorization": basic("traitsync", settings.apiKey.get_secret_value()),
            "Content-Type": "application/json", "User-Agent": "traitsync (mailchimp)"}


def event_name(name: str) -> str:
    """Mailchimp event names: 2-30 of letters, digits, ``_`` and ``-``."""
    safe = re.sub(r"[^A-Za-z0-9_-]+", "_", name.strip()).strip("_")[:30]
    return safe if len(safe) >= 2 else f"{safe}__"[:2]


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def upsert(item: Item, settings: MailchimpSettings, email: str) -> Request:
    body: dict[str, Any] = {"email_address": email, "status_if_new": settings.status_if_new}
    traits = as_dict(item.fields.get("traits"))
    merge = {tag: traits[key] for key, tag in settings.merge_fields.items() if key in traits}
    if merge:
        body["merge_fields"] = merge
    url = f"{settings.base}/lists/{settings.listId}/members/{subscriber_hash(email)}"
    return Request("PUT", url, dumps(body), (0,), _headers(settings), authorize=False, purpose="upsert")


def outcome_of(response: Response) -> Outcome:
    outcome = status_outcome(response)
    data = response.json()
    if outcome.kind == "drop" and isinstance(data, dict) and data.get("title"):
        return Outcome.drop(str(data["title"]).replace(" ", "_")[:60], str(data.get("detail") or "")[:200] or None)
    return outcome


def exchange(items: Sequence[Item], settings: MailchimpSettings, _token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    for item in items:
        email = text(item.fields.get("email"))
        if email is None:
            raise invalid("Mailchimp members are keyed by email; the message has none", code="MISSING_EMAIL")
        email = email.strip()
        member = f"{settings.base}/lists/{settings.listId}/members/{subscriber_hash(email)}"
        if is_track(item):
            name = text(item.fields.get("name")) or "traitsync"
            props = {str(k): _string(v) for k, v in as_dict(item.fields.get("properties")).items()}
            body = dumps({"name": event_name(name), "properties": props,
                          "occurred_at": iso(event_time(item, item.fields.get("occurred_at")))})
            event = Request("POST", f"{member}/events", body, (0,), _headers(settings), authorize=False)
            answer = yield event
            if answer.status == 404:
                created = yield upsert(item, settings, email)
                answer = (yield event) if created.ok else created
            outcomes.append(outcome_of(answer))
            continue
        answer = yield upsert(item, settings, email)
        key = text(item.fields.get("computation_key"))
        traits = as_dict(item.fields.get("traits"))
        if answer.ok and item.fields.get("computation_class") == "audience" and key and key in traits:
            status = "active" if traits[key] is True else "inactive"
            answer = yield Request("POST", f"{member}/tags", dumps({"tags": [{"name": key, "status": status}]}),
                                   (0,), _headers(settings), authorize=False)
        outcomes.append(outcome_of(answer))
    return outcomes


def check(settings: MailchimpSettings, _token: object) -> Request:
    return Request("GET", f"{settings.base}/ping", headers=_headers(settings), authorize=False, purpose="check")


DESTINATION: Destination[MailchimpSettings] = Destination(
    name="Mailchimp",
    slug="mailchimp",
    settings_model=MailchimpSettings,
    exchange=exchange,
    default_rate=10.0,
    max_batch=1,
    timeout_s=30.0,
    event_types=frozenset({"identify", "track"}),
    default_mappings=DEFAULT_MAPPINGS,
    check=check,
    description="Mailchimp audience members (upsert by email), audiences as tags, member events.",
)
