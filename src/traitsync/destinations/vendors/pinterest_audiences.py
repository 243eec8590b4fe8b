"""Pinterest Audiences: an audience becomes a Pinterest customer list (Pinterest API v5).

The first sync creates the list (``POST /ad_accounts/<id>/customer_lists``, ``list_type``
``EMAIL``, named after the audience) and keeps its id; uploads then ``PATCH
/ad_accounts/<id>/customer_lists/<list id>`` with ``operation_type`` ``ADD`` or ``REMOVE`` and
``records``: one comma-separated string of identifiers, 10,000 a request (our choice: bodies of
about 650 KB; the OpenAPI document sets no cap).

Pinterest's create requires ``records`` (it has no empty list), while traitsync creates the list
alone before any member goes up (the uploads need its id): the create carries one placeholder
record, the SHA-256 of ``traitsync-placeholder@example.invalid``, an address no Pinterest
account can have (``.invalid`` is reserved, RFC 2606), so it matches no one.

Records: emails trimmed, lowercased and SHA-256 hashed (Pinterest also takes plain text; we
never send it); mobile advertising ids (``ios.idfa``, ``android.idfa``) trimmed, lowercased,
SHA-256 (Pinterest requires them hashed). Values already SHA-256 pass through; one that cannot
be normalised is left out. Each record goes once per request.

OAuth: the refresh-token grant at ``/v5/oauth/token`` with the app's id and secret as HTTP Basic
credentials. Errors ``{code, message}``: 401 refreshes the token, 403 pauses the destination,
404 on the list means it was deleted (the next sync creates it again), 429 and 5xx are retried.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

from pydantic import Field, SecretStr

from traitsync.destinations.auth import Token, TokenAuth, oauth_token, refresh_token_request
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
from traitsync.destinations.pii import InvalidIdentifier, hash_email, hash_mobile_id, sha256_hex

DEFAULT_HOST = "https://api.pinterest.com/v5"
MAX_RECORDS = 10_000
PLACEHOLDER = sha256_hex("traitsync-placeholder@example.invalid")
_MOBILE_TYPES = frozenset({"ios.idfa", "android.idfa"})


class PinterestAudiencesSettings(DestinationSettings):
    ad_account_id: str = Field(pattern=r"^\d{1,18}$", description="The Pinterest ad account.")
    client_id: str = Field(min_length=1, description="Pinterest app id.")
    client_secret: SecretStr = Field(description="Pinterest app secret key.")
    refresh_token: SecretStr = Field(description="OAuth refresh token with the ads:read and ads:write scopes.")
    token_url: str | None = Field(default=None, description="Override the OAuth token endpoint.")

    @property
    def host(self) -> str:
        return (self.endpoint or DEFAULT_HOST).rstrip("/")


def record(member: dict[str, Any]) -> str | None:
    kind, value = str(member.get("type", "")), str(member.get("value", ""))
    try:
        if kind == "email":
            return hash_email(value)
        if kind in _MOBILE_TYPES:
            return hash_mobile_id(value)
    except InvalidIdentifier:
        return None
    return None


def classify_answer(response: Response) -> Outcome:
    if response.error is not None or response.ok:
        return status_outcome(response)
    data = response.json()
    message = str(data.get("message", ""))[:200] if isinstance(data, dict) else ""
    code = f"PINTEREST_{data['code']}" if isinstance(data, dict) and data.get("code") is not None else str(
        response.status)
    if response.status == 404:
        return Outcome.drop(LIST_GONE, message)
    if response.status == 403:
        return Outcome.auth(code, message)
    if response.status == 429 or response.status >= 500:
        return Outcome.retry(parse_retry_after(response.header("retry-after")), code, message)
    base = status_outcome(response)
    return Outcome(base.kind, base.retry_after, code, message=message)


def exchange(items: Sequence[Item], settings: PinterestAudiencesSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    headers = {"Content-Type": "application/json"}
    lists = f"{settings.host}/ad_accounts/{settings.ad_account_id}/customer_lists"
    for item in items:
        message = item.message
        action = message.get("action")
        if action == "create":
            audience = message.get("audience", {})
            body = {"name": str(audience.get("name") or audience.get("key")), "records": PLACEHOLDER,
                    "list_type": "EMAIL"}
            answer = yield Request("POST", lists, dumps(body), headers=headers, purpose="create")
            outcome = classify_answer(answer)
            data = answer.json() if outcome.kind == "ok" else None
            if isinstance(data, dict) and data.get("id"):
                outcome = Outcome.ok({"external_id": str(data["id"])})
            elif outcome.kind == "ok":
                outcome = Outcome.retry(code="PINTEREST_NO_LIST_ID", message="create answered without an id")
            outcomes.append(outcome)
            continue
        list_id = message.get("context", {}).get("personas", {}).get("external_audience_id")
        if not list_id:
            outcomes.append(Outcome.drop(LIST_GONE, "no Pinterest customer list id for this list yet"))
            continue
        records = list(dict.fromkeys(r for r in (record(m) for m in message.get("members", [])) if r is not None))
        result = Outcome.ok()
        for start in range(0, len(records), MAX_RECORDS):
            body = {"operation_type": "ADD" if action == "add" else "REMOVE",
                    "records": ",".join(records[start:start + MAX_RECORDS])}
            answer = yield Request("PATCH", f"{lists}/{list_id}", dumps(body), headers=headers, purpose=str(action))
            result = classify_answer(answer)
            if result.kind != "ok":
                break
        outcomes.append(result)
    return outcomes


def token_request(settings: PinterestAudiencesSettings) -> Request:
    basic = base64.b64encode(f"{settings.client_id}:{settings.client_secret.get_secret_value()}".encode()).decode()
    return refresh_token_request(settings.token_url or f"{DEFAULT_HOST}/oauth/token",
                                 settings.refresh_token.get_secret_value()).with_headers(
        Authorization=f"Basic {basic}")


def check(settings: PinterestAudiencesSettings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.host}/ad_accounts/{settings.ad_account_id}", purpose="check")


DESTINATION: Destination[PinterestAudiencesSettings] = Destination(
    name="Pinterest Audiences",
    slug="pinterest_audiences",
    settings_model=PinterestAudiencesSettings,
    exchange=exchange,
    auth=TokenAuth(fetch=token_request, parse=oauth_token),
    check=check,
    default_rate=10.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MAX_RECORDS,
    timeout_s=30.0,
    description="Customer lists; emails and mobile ids SHA-256 hashed, records as one comma-separated string.",
)
