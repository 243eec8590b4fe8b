"""Pardot (Salesforce Marketing Cloud Account Engagement): prospects upserted by email.

Auth: Salesforce OAuth (a connected app's refresh token, exchanged at ``login.salesforce.com`` or
``test.salesforce.com``), sent as ``Authorization: Bearer`` with ``Pardot-Business-Unit-Id``.

Every message is ``POST /api/v5/objects/prospects/do/upsertLatestByEmail {matchEmail,
prospect:{email, <fields>}, secondaryDeletedSearch:true}``: the most recently updated prospect
with that email is updated, or one is created (a deleted one is restored rather than duplicated).
Audience membership and trait values go to custom fields named after their key with ``__c``
(``vip_buyers`` -> ``vip_buyers__c``); standard traits to standard fields (``first_name`` ->
``firstName``...). Tracks set the same field: Pardot has no custom event API.

Answers: 401 refreshes the token once; error code 66 (daily API allocation used up) and 122
(too many concurrent requests) and 429 / 5xx are retried; other errors drop the message with
Pardot's numeric code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

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
from traitsync.destinations.vendors._computation import EMAIL_MAPPING, change_of, scalar, text
from traitsync.destinations.vendors._salesforce_oauth import salesforce_auth

PRODUCTION = "https://pi.pardot.com"
SANDBOX = "https://pi.demo.pardot.com"
STANDARD = {"email": None, "first_name": "firstName", "last_name": "lastName", "firstName": "firstName",
            "lastName": "lastName", "company": "company", "phone": "phone", "title": "jobTitle",
            "job_title": "jobTitle", "city": "city", "state": "state", "zip": "zip", "country": "country",
            "website": "website", "salutation": "salutation", "industry": "industry"}
RETRYABLE = {"66": 3600.0, "122": 5.0}


class PardotSettings(DestinationSettings):
    client_id: str = Field(min_length=1, description="Consumer key of the Salesforce connected app.")
    client_secret: SecretStr = Field(description="Consumer secret of the connected app.")
    refresh_token: SecretStr = Field(description="Refresh token granted to the app (scopes `pardot_api "
                                     "refresh_token`).")
    businessUnitID: str = Field(pattern=r"^0Uv[A-Za-z0-9]{12}([A-Za-z0-9]{3})?$", description="Pardot Business "
                                "Unit ID (Setup > Account Engagement > Business Unit Setup), 0Uv...")
    isSandbox: bool = Field(default=False, description="Use test.salesforce.com and pi.demo.pardot.com.")

    @property
    def base(self) -> str:
        return (self.endpoint or (SANDBOX if self.isSandbox else PRODUCTION)).rstrip("/")


def field_name(key: str) -> str | None:
    if key in STANDARD:
        return STANDARD[key]
    if key.endswith("__c"):
        return key
    name = re.sub(r"_+", "_", re.sub(r"[^A-Za-z0-9_]", "_", key)).strip("_")
    return f"{name}__c" if name else None


def prospect_of(item: Item, email: str) -> dict[str, Any]:
    change = change_of(item.message)
    attributes = {change.key: change.value} if change.is_track and change.key else change.attributes
    prospect: dict[str, Any] = {"email": email}
    for key, value in attributes.items():
        name = field_name(str(key))
        if name is not None:
            prospect[name] = scalar(value)
    return prospect


def answer_outcome(response: Response) -> Outcome:
    base = status_outcome(response)
    if base.kind in ("ok", "auth"):
        if base.kind == "ok":
            data = response.json()
            return Outcome.ok({"prospect_id": str(data["id"])} if isinstance(data, dict) and data.get("id") else None)
        return base
    data = response.json()
    code = str(data.get("code")) if isinstance(data, dict) and data.get("code") is not None else None
    message = data.get("message") if isinstance(data, dict) else None
    if code in RETRYABLE:
        return Outcome.retry(RETRYABLE[code], code, message)
    if base.kind == "drop" and code:
        return Outcome.drop(code, message)
    return base


def exchange(items: Sequence[Item], settings: PardotSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    for i, item in enumerate(items):
        email = text(item.fields.get("email"))
        if email is None:
            outcomes.append(Outcome.drop("MISSING_EMAIL", "Pardot prospects are upserted by email; the message "
                                         "has none"))
            continue
        body = {"matchEmail": email, "prospect": prospect_of(item, email), "secondaryDeletedSearch": True}
        answer = yield Request("POST", f"{settings.base}/api/v5/objects/prospects/do/upsertLatestByEmail",
                               dumps(body), (i,), headers=_headers(settings))
        outcomes.append(answer_outcome(answer))
    return outcomes


def _headers(settings: PardotSettings) -> dict[str, str]:
    return {"Pardot-Business-Unit-Id": settings.businessUnitID, "Content-Type": "application/json",
            "Accept": "application/json"}


def check(settings: PardotSettings, token: Token | None) -> Request:
    return Request("GET", f"{settings.base}/api/v5/objects/prospects?fields=id,email&limit=1",
                   headers=_headers(settings), purpose="check")


DESTINATION: Destination[PardotSettings] = Destination(
    name="Pardot",
    slug="pardot",
    settings_model=PardotSettings,
    exchange=exchange,
    auth=salesforce_auth(lambda s: s.isSandbox),
    default_rate=2.0,
    max_batch=10,
    event_types=frozenset({"identify", "track"}),
    default_mappings={"email": EMAIL_MAPPING},
    check=check,
    description="Upsert Pardot (Account Engagement) prospects by email with audience and trait custom fields.",
)
