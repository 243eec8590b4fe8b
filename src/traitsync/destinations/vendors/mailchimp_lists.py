"""Mailchimp (lists): an audience becomes a static segment of a Mailchimp audience.

Mailchimp keeps contacts in an *audience* (a list, ``listId``); a static segment inside it is the
list analogue. The first sync creates the segment (``POST /lists/<listId>/segments {name,
static_segment: []}``, named after the audience) and keeps its id. Each add or remove is at
most 500 members, Mailchimp's limit for both calls:

* add: members must be in the audience before they can be in a segment, so they are first
  batch-subscribed (``POST /lists/<listId> {members: [{email_address, status}],
  update_existing: false}``: new contacts get ``status_if_new``, existing ones, and their
  subscription status, are left alone), then ``POST /lists/<listId>/segments/<id>
  {members_to_add}``;
* remove: ``POST /lists/<listId>/segments/<id> {members_to_remove}`` (emails not in the audience
  are ignored by Mailchimp). Members stay in the audience: leaving a segment is not unsubscribing.

Mailchimp answers 200 even when some members failed (``errors`` naming the email); those
members are reported by position and tried again at the next sync. Contacts already in the
audience are not failures. Emails are Mailchimp's identifier, so they go in plain text in
request bodies to Mailchimp, over TLS, and never in logs or the debugger; messages are ours.
404 on the segment (deleted in Mailchimp) makes the next sync create it again; 429 (more than 10
connections at once) and 5xx are retried; 401/403 pause the destination.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from traitsync.destinations.auth import Token
from traitsync.destinations.base import (
    LIST_GONE,
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
from traitsync.destinations.pii import InvalidIdentifier, normalize_email
from traitsync.destinations.vendors._engage import basic
from traitsync.destinations.vendors._lists import Step, audience_name, created, list_exchange, members_of, with_rejected

MAX_MEMBERS = 500
_DC = re.compile(r"-([a-z]{2,4}\d{1,3})$")
#: Batch-subscribe errors that are not failures: the contact is already in the audience.
_ALREADY_THERE = frozenset({"ERROR_CONTACT_EXISTS", "ERROR_GENERIC_EXISTS"})


class MailchimpListsSettings(DestinationSettings):
    apiKey: SecretStr = Field(description="A Marketing API key; its suffix (-us6) is the data center.")
    listId: str = Field(min_length=1, description="The Mailchimp audience the segments are made in.")
    status_if_new: Literal["subscribed", "pending", "unsubscribed", "transactional"] = Field(
        default="subscribed", description="Status of contacts traitsync adds to the audience (pending = double "
                                          "opt-in; transactional = no marketing consent).")

    @field_validator("apiKey")
    @classmethod
    def _dc(cls, value: SecretStr) -> SecretStr:
        if not _DC.search(value.get_secret_value()):
            raise ValueError("apiKey must end in its data center, e.g. 0123abcd-us6")
        return value

    @property
    def base(self) -> str:
        match = _DC.search(self.apiKey.get_secret_value())
        dc = match.group(1) if match else "us1"
        return (self.endpoint or f"https://{dc}.api.mailchimp.com").rstrip("/") + "/3.0"


def _post(settings: MailchimpListsSettings, path: str, body: Any, purpose: str) -> Request:
    return Request("POST", f"{settings.base}/lists/{settings.listId}{path}", dumps(body),
                   headers={"Authorization": basic("traitsync", settings.apiKey.get_secret_value()),
                            "Content-Type": "application/json"}, purpose=purpose)


def classify_answer(response: Response) -> Outcome:
    """By status; the message names the problem's title, never its detail (which quotes emails)."""
    base = status_outcome(response)
    if base.kind == "ok" or response.error is not None:
        return base
    data = response.json()
    title = str(data.get("title") or base.code) if isinstance(data, dict) else base.code
    return Outcome(base.kind, base.retry_after, base.code, message=f"Mailchimp answered {response.status} ({title})")


def member_email(member: Mapping[str, Any]) -> str | None:
    if member.get("type") != "email":
        return None
    try:
        email = normalize_email(str(member.get("value", "")))
    except InvalidIdentifier:
        return None
    return email if "@" in email else None


def _failed_emails(data: Any, *keys: str) -> set[str]:
    """Emails an answer's ``errors`` name (batch subscribe: ``email_address``; segment:
    ``email_addresses``), leaving out contacts that were simply already there."""
    out: set[str] = set()
    for error in (data.get("errors") or []) if isinstance(data, dict) else []:
        if not isinstance(error, dict) or error.get("error_code") in _ALREADY_THERE:
            continue
        for key in keys:
            value = error.get(key)
            for email in value if isinstance(value, list) else [value] if value else []:
                out.add(str(email).lower())
    return out


def _create(message: Mapping[str, Any], settings: MailchimpListsSettings, _token: Token | None) -> Step:
    answer = yield _post(settings, "/segments", {"name": audience_name(message, 100), "static_segment": []},
                         "create")
    if answer.status == 404:
        return Outcome.drop("MAILCHIMP_AUDIENCE_NOT_FOUND", "Mailchimp has no audience with the configured listId")
    outcome = classify_answer(answer)
    data = answer.json() if outcome.kind == "ok" else None
    return created(outcome, data.get("id") if isinstance(data, dict) else None, "Mailchimp")


def _upload(message: Mapping[str, Any], settings: MailchimpListsSettings, _token: Token | None, action: str,
            segment_id: str) -> Step:
    members = members_of(message, member_email)
    if not members:
        return Outcome.ok()
    emails = [email for _, email in members]
    failed: set[str] = set()
    if action == "add":
        body = {"members": [{"email_address": e, "status": settings.status_if_new} for e in emails],
                "update_existing": False}
        answer = yield _post(settings, "", body, "subscribe")
        outcome = classify_answer(answer)
        if outcome.kind != "ok":
            return outcome
        failed = _failed_emails(answer.json(), "email_address")
        emails = [e for e in emails if e not in failed]
    if emails:
        key = "members_to_add" if action == "add" else "members_to_remove"
        answer = yield _post(settings, f"/segments/{segment_id}", {key: emails}, f"{action} members")
        if answer.status == 404:
            return Outcome.drop(LIST_GONE, "Mailchimp has no such segment")
        outcome = classify_answer(answer)
        if outcome.kind != "ok":
            return outcome
        failed |= _failed_emails(answer.json(), "email_addresses", "email_address")
    bad = [position for position, email in members if email in failed]
    return with_rejected(Outcome.ok(), bad, ["MAILCHIMP_REFUSED"] if bad else [])


def exchange(items: Sequence[Item], settings: MailchimpListsSettings, token: Token | None) -> Exchange:
    return list_exchange(items, settings, token, vendor="Mailchimp", create=_create, upload=_upload)


def check(settings: MailchimpListsSettings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.base}/lists/{settings.listId}?fields=id,name",
                   headers={"Authorization": basic("traitsync", settings.apiKey.get_secret_value())}, purpose="check")


DESTINATION: Destination[MailchimpListsSettings] = Destination(
    name="Mailchimp Lists",
    slug="mailchimp_lists",
    settings_model=MailchimpListsSettings,
    exchange=exchange,
    check=check,
    default_rate=10.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MAX_MEMBERS,
    timeout_s=120.0,
    description="Static segments of a Mailchimp audience; contacts matched by (plain) email.",
)
