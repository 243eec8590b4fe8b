"""Salesforce (CRM): find the Lead or Contact by email with SOQL, then update it or create it.

Auth: a connected app's OAuth refresh token exchanged at the login host
(``login.salesforce.com``; ``test.salesforce.com`` when ``isSandbox``); the answer's
``instance_url`` is the org's API host. Each message costs two requests: ``GET
/services/data/vXX.X/query?q=SELECT Id FROM Lead WHERE Email = '...'`` then ``PATCH
/sobjects/Lead/{Id}`` (204) or ``POST /sobjects/Lead`` (201).

Computed traits and audiences land in custom fields named after their key (``vip_buyers`` ->
``vip_buyers__c``; a key already ending in ``__c`` is used as is); standard traits map to
standard fields (``first_name`` -> ``FirstName``...). Tracks update the same field, since
Salesforce has no event API. Creating a Lead needs ``LastName`` and ``Company``: they come from the
profile's ``last_name`` / ``company`` traits, else ``[not provided]``, as Web-to-Lead does.

Answers: 401 ``INVALID_SESSION_ID`` refreshes the token; ``REQUEST_LIMIT_EXCEEDED`` (403, the
org's daily allocation), ``UNABLE_TO_LOCK_ROW`` and ``SERVER_UNAVAILABLE`` are retried; other
errors (``INVALID_FIELD``, ``REQUIRED_FIELD_MISSING``, ``DUPLICATE_VALUE``...) are dropped with
that code.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal
from urllib.parse import quote

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
from traitsync.destinations.vendors._computation import EMAIL_MAPPING, change_of, scalar, text
from traitsync.destinations.vendors._salesforce_oauth import salesforce_auth

STANDARD = {"email": "Email", "first_name": "FirstName", "last_name": "LastName", "firstName": "FirstName",
            "lastName": "LastName", "company": "Company", "phone": "Phone", "title": "Title",
            "name": None, "address": None, "id": None}
NOT_PROVIDED = "[not provided]"
RETRYABLE_CODES = {"REQUEST_LIMIT_EXCEEDED": 3600.0, "UNABLE_TO_LOCK_ROW": None, "SERVER_UNAVAILABLE": None,
                   "API_CURRENTLY_DISABLED": 600.0}
_FIELD = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


class SalesforceSettings(DestinationSettings):
    client_id: str = Field(min_length=1, description="Consumer key of the connected app.")
    client_secret: SecretStr = Field(description="Consumer secret of the connected app.")
    refresh_token: SecretStr = Field(description="Refresh token the connected app was granted (scope `api "
                                     "refresh_token`).")
    instanceUrl: str | None = Field(default=None, description="The org's API host; normally taken from the "
                                    "token answer's `instance_url`.")
    isSandbox: bool = Field(default=False, description="Authenticate at test.salesforce.com.")
    sobject: Literal["Lead", "Contact"] = Field(default="Lead", description="The object profiles are written to.")
    api_version: str = Field(default="v62.0", pattern=r"^v\d{2,3}\.0$", description="REST API version.")

    @field_validator("instanceUrl")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("https://", "http://")):
            raise ValueError("instanceUrl must be a URL such as https://acme.my.salesforce.com")
        return value.rstrip("/") if value else value


def api_base(settings: SalesforceSettings, token: Token | None) -> str:
    host = (token.extra.get("instance_url") if token is not None else None) or settings.instanceUrl
    if not host:
        host = settings.endpoint or ""
    return f"{host.rstrip('/')}/services/data/{settings.api_version}"


def soql_literal(value: str) -> str:
    """A SOQL string literal: backslash and quote escaped."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def field_name(key: str) -> str | None:
    if key in STANDARD:
        return STANDARD[key]
    if key.endswith("__c"):
        return key if _FIELD.match(key) else None
    name = re.sub(r"[^A-Za-z0-9_]", "_", key).strip("_")
    name = re.sub(r"_+", "_", name)
    if not name or not name[0].isalpha():
        name = f"X{name}"
    return f"{name}__c"


def record_fields(item: Item) -> dict[str, Any]:
    change = change_of(item.message)
    attributes = {change.key: change.value} if change.is_track and change.key else change.attributes
    out: dict[str, Any] = {}
    for key, value in attributes.items():
        name = field_name(str(key))
        if name is not None and name != "Email":
            out[name] = scalar(value)
    return out


def error_outcome(response: Response) -> Outcome:
    """A failed answer: Salesforce's ``[{message, errorCode}]`` decides retry or drop."""
    base = status_outcome(response)
    data = response.json()
    first = data[0] if isinstance(data, list) and data and isinstance(data[0], dict) else {}
    code = str(first.get("errorCode") or "")
    message = str(first.get("message") or "") or None
    if base.kind == "ok":
        return base
    if code in RETRYABLE_CODES:  # REQUEST_LIMIT_EXCEEDED comes as a 403, yet it is a quota, not a refusal
        return Outcome.retry(RETRYABLE_CODES[code], code, message)
    if base.kind == "auth" or not code:
        return base
    if base.kind == "retry":
        return Outcome.retry(base.retry_after, code, message)
    return Outcome.drop(code, message)


def exchange(items: Sequence[Item], settings: SalesforceSettings, token: Token | None) -> Exchange:
    base = api_base(settings, token)
    if base.startswith("/services"):
        # Neither the token answer nor the settings name the org's host: nothing can be sent.
        return [Outcome.auth("NO_INSTANCE_URL", "the token answer had no instance_url; set instanceUrl")] * len(items)
    outcomes: list[Outcome] = []
    json_headers = {"Content-Type": "application/json", "Accept": "application/json"}
    for i, item in enumerate(items):
        email = text(item.fields.get("email"))
        if email is None:
            outcomes.append(Outcome.drop("MISSING_EMAIL", f"Salesforce {settings.sobject}s are found by email; "
                                         "the message has none"))
            continue
        soql = (f"SELECT Id FROM {settings.sobject} WHERE Email = {soql_literal(email)} "
                "ORDER BY LastModifiedDate DESC LIMIT 1")
        found = yield Request("GET", f"{base}/query?q={quote(soql, safe='')}", indices=(i,),
                              headers={"Accept": "application/json"}, purpose="lookup")
        if not found.ok:
            outcomes.append(error_outcome(found))
            continue
        data = found.json()
        records = data.get("records") if isinstance(data, dict) else None
        if not isinstance(records, list):
            outcomes.append(Outcome.retry(code="SALESFORCE_BAD_ANSWER", message="query answer has no records"))
            continue
        fields = record_fields(item)
        if records:
            record_id = str(records[0].get("Id"))
            answer = yield Request("PATCH", f"{base}/sobjects/{settings.sobject}/{record_id}", dumps(fields), (i,),
                                   headers=json_headers)
            outcomes.append(Outcome.ok({"id": record_id}) if answer.ok else error_outcome(answer))
            continue
        created: dict[str, Any] = {"Email": email}
        created["LastName"] = text(fields.pop("LastName", None)) or text(item.traits.get("last_name")) or NOT_PROVIDED
        if settings.sobject == "Lead":
            created["Company"] = text(fields.pop("Company", None)) or text(item.traits.get("company")) or NOT_PROVIDED
        created.update(fields)
        answer = yield Request("POST", f"{base}/sobjects/{settings.sobject}", dumps(created), (i,),
                               headers=json_headers)
        body = answer.json()
        new_id = body.get("id") if isinstance(body, dict) else None
        outcomes.append(Outcome.ok({"id": str(new_id)} if new_id else None) if answer.ok else error_outcome(answer))
    return outcomes


def check(settings: SalesforceSettings, token: Token | None) -> Request:
    return Request("GET", f"{api_base(settings, token)}/limits", headers={"Accept": "application/json"},
                   purpose="check")


DESTINATION: Destination[SalesforceSettings] = Destination(
    name="Salesforce",
    slug="salesforce",
    settings_model=SalesforceSettings,
    exchange=exchange,
    auth=salesforce_auth(lambda s: s.isSandbox),
    default_rate=5.0,
    max_batch=25,
    event_types=frozenset({"identify", "track"}),
    default_mappings={"email": EMAIL_MAPPING},
    required_traits=frozenset({"last_name", "company"}),
    check=check,
    description="Find the Lead or Contact by email (SOQL), then update its custom fields or create it.",
)
