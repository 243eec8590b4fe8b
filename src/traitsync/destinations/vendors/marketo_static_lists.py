"""Marketo Static Lists: an audience becomes a static list of Marketo leads, matched by email.

The first sync finds the folder (``GET /rest/asset/v1/folder/byName.json``) and creates the list
in it (``POST /rest/asset/v1/staticLists.json?folder=...&name=<audience name>``); if a list of
that name already exists there (error 709, e.g. a create whose answer was lost) its id is looked
up by name instead. Uploads go 300 members at a time (Marketo's batch):

- add: the leads are upserted by email (``POST /rest/v1/leads.json``, ``createOrUpdate``, as
  Segment's bulk import creates missing leads), which gives their ids, then
  ``POST /rest/v1/lists/<id>/leads.json {input: [{id}]}``;
- remove: the leads are looked up by email (``POST /rest/v1/leads.json?_method=GET``, form
  ``filterType=email&filterValues=...``, so 300 emails never overflow the URL), then
  ``DELETE /rest/v1/lists/<id>/leads.json?id=..``; emails Marketo does not know are not on the list.

**Marketo matches leads by plain email**, so emails go in plain text (trimmed, lowercased) in
request bodies to Marketo; never in logs or the debugger (members show as SHA-256, and failure
details are the adapter's words, not Marketo's answers).

Auth and errors are Marketo's (``vendors/marketo.py``): a client-credentials token, 601/602
refresh it, 606/615 slow every process down, 607/604/608/611/1029 retry later. Error 1013
(object not found) on the list means it was deleted: the next sync creates it again. A record
Marketo skips (a malformed email) does not fail the others; skipped records are counted in the
outcome's detail.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote, quote_plus, urlencode

from pydantic import Field, SecretStr, field_validator

from traitsync.destinations.auth import FORM, Token, TokenAuth, client_credentials_request, oauth_token
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
)
from traitsync.destinations.pii import InvalidIdentifier, normalize_email
from traitsync.destinations.vendors.marketo import request_outcome, throttle, token_expired

MAX_RECORDS = 300
GONE_CODES = frozenset({"1013"})
NAME_TAKEN = "709"
#: One list operation's requests: yields requests, returns its single outcome.
Step = Generator[Request, Response, Outcome]


class MarketoStaticListsSettings(DestinationSettings):
    client_id: str = Field(min_length=1, description="Client ID of the LaunchPoint API service.")
    client_secret: SecretStr = Field(description="Client secret of the LaunchPoint API service.")
    api_endpoint: str = Field(description="REST API endpoint, https://<munchkin-id>.mktorest.com; "
                              "`endpoint` overrides it.")
    folder_name: str = Field(min_length=1, description="Marketo folder the static lists are created in.")

    @field_validator("api_endpoint")
    @classmethod
    def _an_https_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        for suffix in ("/rest", "/identity"):
            value = value.removesuffix(suffix)
        if not value.startswith(("https://", "http://")):
            raise ValueError("api_endpoint must be a URL such as https://123-ABC-456.mktorest.com")
        return value

    @property
    def base(self) -> str:
        return (self.endpoint or self.api_endpoint).rstrip("/")

    def secrets(self) -> list[str]:
        """The secret travels in the token URL's query string: redact its URL-encoded forms too."""
        out = super().secrets()
        for secret in list(out):
            out.extend({quote(secret, safe=""), quote_plus(secret)} - {secret})
        return out


def lead_email(member: dict[str, Any]) -> str | None:
    if member.get("type") != "email":
        return None
    try:
        return normalize_email(str(member.get("value", "")))
    except InvalidIdentifier:
        return None


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def outcome_of(response: Response) -> Outcome:
    """Marketo's envelope, with 1013 (the list is gone) and words of our own (no echoed email)."""
    outcome = request_outcome(response)
    if outcome.kind == "ok":
        return outcome
    if outcome.code in GONE_CODES:
        return Outcome.drop(LIST_GONE, "Marketo has no such static list")
    return replace(outcome, message=f"Marketo answered {outcome.code}")


def _results(response: Response) -> list[dict[str, Any]]:
    data = response.json()
    results = data.get("result") if isinstance(data, dict) else None
    return [r for r in results if isinstance(r, dict)] if isinstance(results, list) else []


def _create(message: dict[str, Any], settings: MarketoStaticListsSettings) -> Step:
    audience = message.get("audience", {})
    name = str(audience.get("name") or audience.get("key"))
    answer = yield Request("GET", f"{settings.base}/rest/asset/v1/folder/byName.json?"
                           + urlencode({"name": settings.folder_name, "type": "Folder"}), purpose="lookup folder")
    outcome = outcome_of(answer)
    if outcome.kind != "ok":
        return outcome
    folders = _results(answer)
    if not folders or not folders[0].get("id"):
        return Outcome.drop("MARKETO_NO_FOLDER", "no Marketo folder with the configured folder_name")
    folder = json.dumps({"id": folders[0]["id"], "type": "Folder"}, separators=(",", ":"))
    answer = yield Request("POST", f"{settings.base}/rest/asset/v1/staticLists.json",
                           urlencode({"folder": folder, "name": name,
                                      "description": f"traitsync audience {audience.get('key')}"}).encode(),
                           headers={"Content-Type": FORM}, purpose="create")
    outcome = outcome_of(answer)
    if outcome.code == NAME_TAKEN:  # it exists already (a create whose answer was lost): use it
        answer = yield Request("GET", f"{settings.base}/rest/asset/v1/staticList/byName.json?"
                               + urlencode({"name": name}), purpose="lookup list")
        outcome = outcome_of(answer)
    if outcome.kind != "ok":
        return outcome
    found = _results(answer)
    if not found or not found[0].get("id"):
        return Outcome.retry(code="MARKETO_NO_LIST_ID", message="Marketo answered without a list id")
    return Outcome.ok({"external_id": str(found[0]["id"])})


def _add(settings: MarketoStaticListsSettings, list_id: str, emails: list[str]) -> Step:
    skipped = 0
    for start in range(0, len(emails), MAX_RECORDS):
        batch = emails[start:start + MAX_RECORDS]
        answer = yield Request("POST", f"{settings.base}/rest/v1/leads.json",
                               dumps({"action": "createOrUpdate", "lookupField": "email",
                                      "input": [{"email": e} for e in batch]}), headers=_json(),
                               purpose="upsert leads")
        outcome = outcome_of(answer)
        if outcome.kind != "ok":
            return outcome
        ids = [r["id"] for r in _results(answer) if r.get("id") is not None and r.get("status") != "skipped"]
        skipped += len(batch) - len(ids)
        if not ids:
            continue
        answer = yield Request("POST", f"{settings.base}/rest/v1/lists/{list_id}/leads.json",
                               dumps({"input": [{"id": i} for i in ids]}), headers=_json(), purpose="add")
        outcome = outcome_of(answer)
        if outcome.kind != "ok":
            return outcome
        skipped += sum(1 for r in _results(answer) if r.get("status") == "skipped")
    if skipped:
        return Outcome("ok", detail={"skipped_members": skipped},
                       message=f"Marketo skipped {skipped} records; the others are on the list")
    return Outcome.ok()


def _remove(settings: MarketoStaticListsSettings, list_id: str, emails: list[str]) -> Step:
    for start in range(0, len(emails), MAX_RECORDS):
        form = urlencode({"filterType": "email", "filterValues": ",".join(emails[start:start + MAX_RECORDS]),
                          "fields": "id,email"}).encode()
        answer = yield Request("POST", f"{settings.base}/rest/v1/leads.json?_method=GET", form,
                               headers={"Content-Type": FORM}, purpose="lookup leads")
        outcome = outcome_of(answer)
        if outcome.kind != "ok":
            return outcome
        ids = [str(r["id"]) for r in _results(answer) if r.get("id") is not None]
        if not ids:
            continue  # none of them is a lead: not on the list
        query = "&".join(f"id={quote(i)}" for i in ids)
        answer = yield Request("DELETE", f"{settings.base}/rest/v1/lists/{list_id}/leads.json?{query}",
                               purpose="remove")
        outcome = outcome_of(answer)
        if outcome.kind != "ok":
            return outcome
    return Outcome.ok()


def exchange(items: Sequence[Item], settings: MarketoStaticListsSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    for item in items:
        message = item.message
        action = message.get("action")
        if action == "create":
            outcomes.append((yield from _create(message, settings)))
            continue
        list_id = message.get("context", {}).get("personas", {}).get("external_audience_id")
        if not list_id:
            outcomes.append(Outcome.drop(LIST_GONE, "no Marketo static list id for this list yet"))
            continue
        emails = list(dict.fromkeys(e for e in (lead_email(m) for m in message.get("members", [])) if e))
        if not emails:
            outcomes.append(Outcome.ok())
            continue
        step = _add(settings, str(list_id), emails) if action == "add" else _remove(settings, str(list_id), emails)
        outcomes.append((yield from step))
    return outcomes


def _token_request(settings: MarketoStaticListsSettings) -> Request:
    return client_credentials_request(f"{settings.base}/identity/oauth/token", settings.client_id,
                                      settings.client_secret.get_secret_value(), in_query=True)


def check(settings: MarketoStaticListsSettings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.base}/rest/asset/v1/folder/byName.json?"
                   + urlencode({"name": settings.folder_name, "type": "Folder"}), purpose="check")


DESTINATION: Destination[MarketoStaticListsSettings] = Destination(
    name="Marketo Static Lists",
    slug="marketo_static_lists",
    settings_model=MarketoStaticListsSettings,
    exchange=exchange,
    auth=TokenAuth(fetch=_token_request, parse=oauth_token, expired=token_expired),
    throttle=throttle,
    check=check,
    default_rate=5.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MAX_RECORDS,
    description="Static lists of leads matched by (plain) email, as Marketo requires; missing leads are created.",
)
