"""SendGrid Lists: an audience becomes a Marketing Campaigns contact list.

The first sync creates the list (``POST /v3/marketing/lists {name}``, named after the audience)
and keeps its id. Adds upsert the contacts into it (``PUT /v3/marketing/contacts {list_ids,
contacts: [{email}]}``, up to 30,000 a request, answered 202 with an import job). Removes first
resolve the emails to contact ids (``POST /v3/marketing/contacts/search/emails``, 100 a request)
and then ``DELETE /v3/marketing/lists/<id>/contacts?contact_ids=...`` (100 ids a request);
contacts SendGrid does not know are not in the list, so there is nothing to remove.

**SendGrid matches contacts by plain email**: it is the one identifier it takes, so emails go in
plain text (trimmed and lowercased, as SendGrid stores them) in request bodies to SendGrid, over
TLS. They never appear in logs or in the debugger (which shows list members as SHA-256), and
failure messages are written by this adapter, never SendGrid's (which echo the email).

One malformed email rejects a whole upsert (400 ``errors: [{field: "contacts[i].email"}]``):
the adapter sends the request again without the contacts the errors point at, and names them by
position in the outcome's detail (``rejected``), so they are tried again at the next sync.
Values that are not emails at all are left out before sending.
401/403 pause the destination; 404 on the list (deleted in SendGrid) makes the next sync create
it again; 429 (``X-RateLimit-Reset``) and 5xx are retried.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

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
    parse_retry_after,
    status_outcome,
)
from traitsync.destinations.pii import InvalidIdentifier, normalize_email
from traitsync.destinations.vendors._lists import (
    Step,
    audience_name,
    created,
    list_exchange,
    members_of,
    with_rejected,
)

HOSTS = {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
MAX_CONTACTS = 30_000
SEARCH_CHUNK = 100
DELETE_CHUNK = 100
_EMAIL = re.compile(r"^[^@\s,;'\"]+@[^@\s,;'\"]+\.[^@\s,;'\"]+$")
_FIELD_INDEX = re.compile(r"contacts\[(\d+)\]")


class SendGridListsSettings(DestinationSettings):
    sendgrid_api_key: SecretStr = Field(description="An API key with the Marketing (contacts, lists) scopes.")
    region: Literal["global", "eu"] = Field(default="global", description="EU for EU-pinned subusers.")

    @property
    def host(self) -> str:
        return (self.endpoint or HOSTS[self.region]).rstrip("/")


def contact_email(member: Mapping[str, Any]) -> str | None:
    if member.get("type") != "email":
        return None
    try:
        email = normalize_email(str(member.get("value", "")))
    except InvalidIdentifier:
        return None
    return email if _EMAIL.match(email) else None


def _headers(settings: SendGridListsSettings) -> dict[str, str]:
    key = settings.sendgrid_api_key.get_secret_value()
    return {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}


def classify_answer(response: Response, *, now: float | None = None) -> Outcome:
    """By status; the message never quotes SendGrid's text (it can echo an email)."""
    if response.error is not None or response.ok:
        return status_outcome(response)
    status = response.status
    if status == 404:
        return Outcome.drop(LIST_GONE, "SendGrid has no such list")
    if status == 429:
        reset = response.header("x-ratelimit-reset")
        wait = parse_retry_after(response.header("retry-after"))
        if wait is None and reset and reset.strip().isdigit():
            wait = max(0.0, float(reset) - (time.time() if now is None else now))
        return Outcome.retry(wait, "429", "SendGrid rate limit")
    base = status_outcome(response)
    return Outcome(base.kind, base.retry_after, base.code, message=f"SendGrid answered {status}")


def _rejected_indices(response: Response) -> set[int]:
    data = response.json()
    errors = data.get("errors") if isinstance(data, dict) else None
    out: set[int] = set()
    for error in errors if isinstance(errors, list) else []:
        match = _FIELD_INDEX.search(str(error.get("field") or "")) if isinstance(error, dict) else None
        if match:
            out.add(int(match.group(1)))
    return out


def _add(settings: SendGridListsSettings, list_id: str, members: list[tuple[int, str]]) -> Step:
    refused: list[int] = []
    for start in range(0, len(members), MAX_CONTACTS):
        batch = members[start:start + MAX_CONTACTS]
        for _attempt in range(2):
            if not batch:
                break
            body = {"list_ids": [list_id], "contacts": [{"email": e} for _, e in batch]}
            answer = yield Request("PUT", f"{settings.host}/v3/marketing/contacts", dumps(body),
                                   headers=_headers(settings), purpose="add")
            bad = _rejected_indices(answer) if answer.status == 400 else set()
            if not bad:
                outcome = classify_answer(answer)
                if outcome.kind != "ok":
                    return outcome
                break
            refused.extend(batch[i][0] for i in sorted(bad) if i < len(batch))
            batch = [m for i, m in enumerate(batch) if i not in bad]
        else:
            return Outcome.drop("400", "SendGrid rejected the contacts again")
    return with_rejected(Outcome.ok(), refused, ["SENDGRID_INVALID_EMAIL"] if refused else [])


def _remove(settings: SendGridListsSettings, list_id: str, emails: list[str]) -> Step:
    ids: list[str] = []
    for start in range(0, len(emails), SEARCH_CHUNK):
        answer = yield Request("POST", f"{settings.host}/v3/marketing/contacts/search/emails",
                               dumps({"emails": emails[start:start + SEARCH_CHUNK]}), headers=_headers(settings),
                               purpose="lookup")
        if answer.status == 404:
            continue  # none of these emails is a contact: nothing to remove
        outcome = classify_answer(answer)
        if outcome.kind != "ok":
            return outcome if outcome.code != LIST_GONE else Outcome.retry(code="404")
        data = answer.json()
        result = data.get("result") if isinstance(data, dict) else None
        for found in (result or {}).values() if isinstance(result, dict) else []:
            contact = found.get("contact") if isinstance(found, dict) else None
            if isinstance(contact, dict) and contact.get("id"):
                ids.append(str(contact["id"]))
    for start in range(0, len(ids), DELETE_CHUNK):
        chunk = ",".join(quote(i, safe="-") for i in ids[start:start + DELETE_CHUNK])
        answer = yield Request("DELETE", f"{settings.host}/v3/marketing/lists/{list_id}/contacts?contact_ids={chunk}",
                               headers=_headers(settings), purpose="remove")
        outcome = classify_answer(answer)
        if outcome.kind != "ok":
            return outcome
    return Outcome.ok()


def _create(message: Mapping[str, Any], settings: SendGridListsSettings, _token: Token | None) -> Step:
    answer = yield Request("POST", f"{settings.host}/v3/marketing/lists", dumps({"name": audience_name(message, 100)}),
                           headers=_headers(settings), purpose="create")
    outcome = classify_answer(answer)
    if outcome.code == LIST_GONE:
        return Outcome.drop("404", "SendGrid answered 404 to the list create")
    data = answer.json() if outcome.kind == "ok" else None
    return created(outcome, data.get("id") if isinstance(data, dict) else None, "SendGrid")


def _upload(message: Mapping[str, Any], settings: SendGridListsSettings, _token: Token | None, action: str,
            list_id: str) -> Step:
    members = members_of(message, contact_email)
    if not members:
        return Outcome.ok()
    if action == "add":
        return (yield from _add(settings, list_id, members))
    return (yield from _remove(settings, list_id, [email for _, email in members]))


def exchange(items: Sequence[Item], settings: SendGridListsSettings, token: Token | None) -> Exchange:
    outcomes = yield from list_exchange(items, settings, token, vendor="SendGrid", create=_create, upload=_upload)
    # Every outcome carries our own words: without them delivery would keep SendGrid's last error
    # answer as the attempt's detail, and SendGrid quotes the email it refused.
    return [replace(o, message=o.message or f"SendGrid {o.kind}") for o in outcomes]


def check(settings: SendGridListsSettings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.host}/v3/marketing/lists?page_size=1", headers=_headers(settings),
                   purpose="check")


DESTINATION: Destination[SendGridListsSettings] = Destination(
    name="SendGrid Lists",
    slug="sendgrid_lists",
    settings_model=SendGridListsSettings,
    exchange=exchange,
    check=check,
    default_rate=100.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MAX_CONTACTS,
    timeout_s=30.0,
    description="Marketing Campaigns contact lists; contacts matched by (plain) email, as SendGrid requires.",
)
