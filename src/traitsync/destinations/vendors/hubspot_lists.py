"""HubSpot Lists: an audience becomes a static (MANUAL) contact list in HubSpot.

The first sync looks the list up by name (``GET /crm/v3/lists/object-type-id/0-1/name/<name>``,
so a list made by an earlier, interrupted sync is reused) and otherwise creates it (``POST
/crm/v3/lists {name, objectTypeId: "0-1", processingType: "MANUAL"}``), keeping its ``listId``.

List membership names contacts by record id (``hs_object_id``), not by email, so:

* add: upsert the contacts by email (``POST /crm/v3/objects/contacts/batch/upsert``, 100 a
  request; a member HubSpot does not have yet becomes a contact), then ``PUT
  /crm/v3/lists/<id>/memberships/add-and-remove {recordIdsToAdd}``;
* remove: read the contacts by email (``POST /crm/v3/objects/contacts/batch/read``, 100 a
  request; an email HubSpot does not know is not on the list), then ``add-and-remove
  {recordIdsToRemove}``.

Emails are HubSpot's identifier for a contact, so they go in plain text (trimmed, lowercased)
in request bodies to HubSpot, over TLS; they never appear in logs or the debugger, and failure
messages are our own words, never HubSpot's (which quote the email). An email HubSpot refuses in
an upsert (a 207 ``errors`` entry naming it) is reported by position and tried again next sync.
429 (``RATE_LIMIT``) and 5xx are retried, 401/403 pause the destination, 404 on the list's
memberships means it was deleted: the next sync creates it again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
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

DEFAULT_HOST = "https://api.hubapi.com"
CONTACTS = "0-1"
#: HubSpot's batch endpoints take at most 100 inputs.
MAX_INPUTS = 100
#: Members per list operation: ten upserts (or reads) and one membership call.
MEMBERS_PER_OPERATION = 1_000


class HubSpotListsSettings(DestinationSettings):
    access_token: SecretStr = Field(description="A private app token (or OAuth access token) with the crm.lists "
                                    "and crm.objects.contacts read/write scopes.")

    @property
    def base(self) -> str:
        return (self.endpoint or DEFAULT_HOST).rstrip("/")


def _request(settings: HubSpotListsSettings, method: str, path: str, body: Any = None, purpose: str = "send"
             ) -> Request:
    headers = {"Authorization": f"Bearer {settings.access_token.get_secret_value()}", "Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = "application/json"
    return Request(method, f"{settings.base}{path}", dumps(body) if body is not None else b"", headers=headers,
                   purpose=purpose)


def classify_answer(response: Response) -> Outcome:
    """By status, with HubSpot's ``category`` as the code; messages are ours (HubSpot's quote emails)."""
    base = status_outcome(response)
    if base.kind == "ok" or response.error is not None:
        return base
    data = response.json()
    category = str(data.get("category") or data.get("errorType") or base.code) if isinstance(data, dict) else base.code
    return Outcome(base.kind, base.retry_after, category, message=f"HubSpot answered {response.status} ({category})")


def contact_email(member: Mapping[str, Any]) -> str | None:
    if member.get("type") != "email":
        return None
    try:
        email = normalize_email(str(member.get("value", "")))
    except InvalidIdentifier:
        return None
    return email if "@" in email else None


def _create(message: Mapping[str, Any], settings: HubSpotListsSettings, _token: Token | None) -> Step:
    name = audience_name(message)
    found = yield _request(settings, "GET", f"/crm/v3/lists/object-type-id/{CONTACTS}/name/{quote(name, safe='')}",
                           purpose="find list")
    if found.ok:
        data = found.json()
        listed = data.get("list") if isinstance(data, dict) else None
        if isinstance(listed, dict) and listed.get("listId"):
            return created(Outcome.ok(), listed["listId"], "HubSpot")
    elif found.status != 404:
        return classify_answer(found)
    answer = yield _request(settings, "POST", "/crm/v3/lists",
                            {"name": name, "objectTypeId": CONTACTS, "processingType": "MANUAL"}, purpose="create")
    outcome = classify_answer(answer)
    data = answer.json() if outcome.kind == "ok" else None
    listed = data.get("list") if isinstance(data, dict) else None
    return created(outcome, listed.get("listId") if isinstance(listed, dict) else None, "HubSpot")


def _record_ids(answer: Response) -> dict[str, str]:
    """email -> record id from a batch answer (a 207's failed inputs are simply absent)."""
    data = answer.json()
    ids: dict[str, str] = {}
    for result in (data.get("results") or []) if isinstance(data, dict) else []:
        if isinstance(result, dict) and result.get("id") is not None:
            email = str((result.get("properties") or {}).get("email") or "").lower()
            if email:
                ids[email] = str(result["id"])
    return ids


def _upload(message: Mapping[str, Any], settings: HubSpotListsSettings, _token: Token | None, action: str,
            list_id: str) -> Step:
    members = members_of(message, contact_email)
    if not members:
        return Outcome.ok()  # no member with an email: nothing HubSpot can hold
    ids: dict[str, str] = {}
    for start in range(0, len(members), MAX_INPUTS):
        emails = [email for _, email in members[start:start + MAX_INPUTS]]
        if action == "add":
            body: dict[str, Any] = {"inputs": [{"idProperty": "email", "id": e, "properties": {"email": e}}
                                               for e in emails]}
            answer = yield _request(settings, "POST", "/crm/v3/objects/contacts/batch/upsert", body, "upsert contacts")
        else:
            body = {"idProperty": "email", "properties": ["email"], "inputs": [{"id": e} for e in emails]}
            answer = yield _request(settings, "POST", "/crm/v3/objects/contacts/batch/read", body, "lookup")
        if answer.status not in (200, 201, 207):
            return classify_answer(answer)
        ids.update(_record_ids(answer))
    records = [ids[email] for _, email in members if email in ids]
    if records:
        key = "recordIdsToAdd" if action == "add" else "recordIdsToRemove"
        answer = yield _request(settings, "PUT", f"/crm/v3/lists/{quote(list_id, safe='')}/memberships/add-and-remove",
                                {key: records}, purpose=f"{action} members")
        if answer.status == 404:
            return Outcome.drop(LIST_GONE, "HubSpot has no such list")
        outcome = classify_answer(answer)
        if outcome.kind != "ok":
            return outcome
    # An add refused for an email did not put that member on the list; a remove of an email
    # HubSpot does not know has nothing to take off.
    bad = [position for position, email in members if action == "add" and email not in ids]
    return with_rejected(Outcome.ok(), bad, ["HUBSPOT_REFUSED"] if bad else [])


def exchange(items: Sequence[Item], settings: HubSpotListsSettings, token: Token | None) -> Exchange:
    return list_exchange(items, settings, token, vendor="HubSpot", create=_create, upload=_upload)


def check(settings: HubSpotListsSettings, _token: Token | None) -> Request:
    return _request(settings, "GET", "/crm/v3/objects/contacts?limit=1&properties=email", purpose="check")


DESTINATION: Destination[HubSpotListsSettings] = Destination(
    name="HubSpot Lists",
    slug="hubspot_lists",
    settings_model=HubSpotListsSettings,
    exchange=exchange,
    check=check,
    default_rate=10.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MEMBERS_PER_OPERATION,
    timeout_s=30.0,
    description="Static (MANUAL) contact lists; contacts upserted by (plain) email, then added by record id.",
)
