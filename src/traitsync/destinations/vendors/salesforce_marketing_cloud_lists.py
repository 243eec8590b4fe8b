"""Salesforce Marketing Cloud Lists: an audience becomes a data extension of its members.

Marketing Cloud targets sends and journeys at data extensions, so each audience gets one: a
row per member, keyed by contact key. The first sync looks for the audience's data extension
by its external key (``GET /data/v1/customobjectdata/key/<key>/rowset?$pageSize=1``: a data
extension made by an earlier, interrupted sync is reused) and otherwise creates it (``POST
/data/v1/customobjects``, the REST endpoint Contact Builder uses) with two fields:
``ContactKey`` (Text 254, the primary key) and ``EmailAddress`` (EmailAddress). The external key,
``<key_prefix><audience key>`` (shortened with a hash past SFMC's 36 characters), is the list id.

* add: rows upserted with ``POST /hub/v1/dataevents/key:<key>/rowset [{keys: {ContactKey},
  values: {EmailAddress}}]``, 50 rows a request. A rowset stops at its first bad row without
  saying which (earlier rows are stored, later ones rejected), so a refused rowset is replayed
  row by row; a row refused alone is reported by position and tried again at the next sync.
* remove: ``DELETE /hub/v1/dataevents/key:<key>/rows/ContactKey:<value>``, one row each (the
  API has no batch delete); a row already gone is not an error.

The contact key is the member's email (default) or its ``user_id`` (``contact_key: user_id``,
for accounts keyed by CRM id). SFMC matches contacts by these plain values, so they go in plain
text in request bodies and row paths to SFMC, over TLS; never in logs or the debugger (the
debugger shows list members as SHA-256). ``10006`` without details is retried (transient);
a data extension deleted in SFMC (404, errorcode 10001) makes the next sync create it again;
401 refreshes the token once; 429 and 5xx are retried.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field

from traitsync.destinations.auth import Token
from traitsync.destinations.base import LIST_GONE, Destination, Exchange, Item, Outcome, Request, Response, dumps
from traitsync.destinations.pii import InvalidIdentifier, normalize_email
from traitsync.destinations.vendors._lists import (
    Step,
    audience_key,
    audience_name,
    created,
    list_exchange,
    members_of,
    with_rejected,
)
from traitsync.destinations.vendors._sfmc import SFMC_AUTH, SfmcAuthSettings, error_outcome, rest_base

MAX_ROWS = 50
MEMBERS_PER_OPERATION = 1_000
MAX_KEY = 36
NOT_FOUND = "10001"


class SfmcListsSettings(SfmcAuthSettings):
    contact_key: Literal["email", "user_id"] = Field(default="email", description="The member identifier that "
                                                     "becomes each row's ContactKey.")
    key_prefix: str = Field(default="ts_", max_length=12, pattern=r"^[A-Za-z0-9_\-]*$",
                            description="Prefix of the external key of each audience's data extension.")
    category_id: int | None = Field(default=None, description="Folder (category id) new data extensions go in; "
                                    "default: the Data Extensions root folder.")


def extension_key(message: Mapping[str, Any], settings: SfmcListsSettings) -> str:
    """The data extension's external key: the prefix and the audience key, hashed down past 36."""
    key = f"{settings.key_prefix}{audience_key(message)}"
    if len(key) <= MAX_KEY:
        return key
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{key[:MAX_KEY - 9]}_{digest}"


def _outcome(response: Response) -> Outcome:
    """SFMC's error envelope; a missing data extension is a deleted list."""
    outcome = error_outcome(response)
    if response.status == 404:
        data = response.json()
        code = str(data.get("errorcode") or "") if isinstance(data, dict) else ""
        if code in (NOT_FOUND, ""):
            return Outcome.drop(LIST_GONE, "SFMC has no such data extension")
    return outcome


def _create(message: Mapping[str, Any], settings: SfmcListsSettings, token: Token | None) -> Step:
    base, key = rest_base(settings, token), extension_key(message, settings)
    found = yield Request("GET", f"{base}/data/v1/customobjectdata/key/{quote(key, safe='')}/rowset?$pageSize=1",
                          purpose="find list")
    if found.ok:
        return created(Outcome.ok(), key, "SFMC")
    if found.status != 404:
        return error_outcome(found)
    body: dict[str, Any] = {
        "name": audience_name(message, 128), "key": key,
        "description": f"traitsync audience {audience_key(message)}",
        "fields": [{"name": "ContactKey", "type": "Text", "length": 254, "isPrimaryKey": True, "isNullable": False,
                    "ordinal": 0},
                   {"name": "EmailAddress", "type": "EmailAddress", "isPrimaryKey": False, "isNullable": True,
                    "ordinal": 1}]}
    if settings.category_id is not None:
        body["categoryId"] = settings.category_id
    answer = yield Request("POST", f"{base}/data/v1/customobjects", dumps(body),
                           headers={"Content-Type": "application/json"}, purpose="create")
    outcome = error_outcome(answer)
    data = answer.json() if outcome.kind == "ok" else None
    return created(outcome, data.get("key") if isinstance(data, dict) else None, "SFMC")


def _row(value: str, settings: SfmcListsSettings) -> dict[str, Any]:
    values = {"EmailAddress": value} if settings.contact_key == "email" else {}
    return {"keys": {"ContactKey": value}, "values": values}


def _add(base: str, key: str, members: list[tuple[int, str]], settings: SfmcListsSettings) -> Step:
    url = f"{base}/hub/v1/dataevents/key:{quote(key, safe='')}/rowset"
    refused: list[int] = []
    for start in range(0, len(members), MAX_ROWS):
        group = members[start:start + MAX_ROWS]
        answer = yield Request("POST", url, dumps([_row(v, settings) for _, v in group]),
                               headers={"Content-Type": "application/json"}, purpose="add members")
        outcome = _outcome(answer)
        if outcome.kind == "ok":
            continue
        if outcome.kind != "drop" or outcome.code == LIST_GONE:
            return outcome
        if len(group) == 1:
            refused.append(group[0][0])
            continue
        for position, value in group:  # which row was bad is not said: one by one (upserts are idempotent)
            single = yield Request("POST", url, dumps([_row(value, settings)]),
                                   headers={"Content-Type": "application/json"}, purpose="add member")
            one = _outcome(single)
            if one.kind == "drop" and one.code != LIST_GONE:
                refused.append(position)
            elif one.kind != "ok":
                return one
    return with_rejected(Outcome.ok(), refused, ["SFMC_ROW_REFUSED"] if refused else [])


def _remove(base: str, key: str, members: list[tuple[int, str]]) -> Step:
    for _, value in members:
        answer = yield Request("DELETE", f"{base}/hub/v1/dataevents/key:{quote(key, safe='')}/rows/"
                               f"ContactKey:{quote(value, safe='@')}", purpose="remove member")
        if answer.status == 404:
            data = answer.json()
            if isinstance(data, dict) and str(data.get("errorcode") or "") == NOT_FOUND:
                return Outcome.drop(LIST_GONE, "SFMC has no such data extension")
            continue  # the row is not there: nothing to remove
        outcome = error_outcome(answer)
        if outcome.kind != "ok":
            return outcome
    return Outcome.ok()


def _upload(message: Mapping[str, Any], settings: SfmcListsSettings, token: Token | None, action: str,
            key: str) -> Step:
    def pick(member: Mapping[str, Any]) -> str | None:
        if member.get("type") != settings.contact_key:
            return None
        value = str(member.get("value", "")).strip()
        if settings.contact_key == "email":
            try:
                value = normalize_email(value)
            except InvalidIdentifier:
                return None
        return value or None

    members = members_of(message, pick)
    if not members:
        return Outcome.ok()
    base = rest_base(settings, token)
    if action == "add":
        return (yield from _add(base, key, members, settings))
    return (yield from _remove(base, key, members))


def exchange(items: Sequence[Item], settings: SfmcListsSettings, token: Token | None) -> Exchange:
    return list_exchange(items, settings, token, vendor="SFMC", create=_create, upload=_upload)


def check(settings: SfmcListsSettings, token: Token | None) -> Request:
    return Request("GET", f"{rest_base(settings, token)}/platform/v1/endpoints", purpose="check")


DESTINATION: Destination[SfmcListsSettings] = Destination(
    name="Salesforce Marketing Cloud Lists",
    slug="salesforce_marketing_cloud_lists",
    settings_model=SfmcListsSettings,
    exchange=exchange,
    auth=SFMC_AUTH,
    check=check,
    default_rate=20.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MEMBERS_PER_OPERATION,
    timeout_s=30.0,
    description="One data extension per audience, a row per member keyed by contact key (email or user_id).",
)
