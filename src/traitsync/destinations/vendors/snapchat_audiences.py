"""Snapchat Audiences: an audience becomes a first-party customer-list segment (Snap Marketing API).

The first sync creates the segment (``POST /adaccounts/<id>/segments``, ``source_type``
``FIRST_PARTY``, named after the audience) and keeps its id; uploads then add and remove
members with ``POST`` / ``DELETE /segments/<id>/users``, up to 100,000 identifiers a request.
Snapchat takes one schema per request, so one list operation sends up to three requests:
``EMAIL_SHA256``, ``PHONE_SHA256`` and ``MOBILE_AD_ID_SHA256``, each identifier once.

Hashing (reference 0.2): email trimmed and lowercased; phone as digits with the country code and
no leading zeros (a ``00`` international prefix is read as ``+``; numbers without a country code
take ``phone_region``), so ``+1 (650) 555-1234`` and ``(650) 555-1234`` both hash
``16505551234``; mobile advertising ids trimmed and lowercased; all SHA-256 hex. A value that
is already a SHA-256 passes through; one that cannot be normalised is left out.

Errors: 401 refreshes the OAuth token; 403 (``E3002``, no permission) pauses the destination;
404 on a segment means it was deleted, so the next sync creates it again; 429 and 5xx are
retried. Snapchat gives no per-identifier status: a failed request fails the whole operation
(and is retried whole: adds and removes are idempotent).
"""

from __future__ import annotations

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
from traitsync.destinations.pii import InvalidIdentifier, hash_email, hash_mobile_id, hash_phone_facebook, is_sha256

DEFAULT_HOST = "https://adsapi.snapchat.com/v1"
TOKEN_URL = "https://accounts.snapchat.com/login/oauth2/access_token"
MAX_IDENTIFIERS = 100_000
SCHEMAS = ("EMAIL_SHA256", "PHONE_SHA256", "MOBILE_AD_ID_SHA256")
_MOBILE_TYPES = frozenset({"ios.idfa", "android.idfa"})


class SnapchatAudiencesSettings(DestinationSettings):
    ad_account_id: str = Field(pattern=r"^[0-9a-fA-F-]{8,64}$", description="The Snap ad account (a UUID).")
    client_id: str = Field(min_length=1, description="OAuth app client id.")
    client_secret: SecretStr = Field(description="OAuth app client secret.")
    refresh_token: SecretStr = Field(description="OAuth refresh token with the snapchat-marketing-api scope.")
    token_url: str | None = Field(default=None, description="Override the OAuth token endpoint.")
    retention_in_days: int = Field(default=9999, ge=1, le=9999, description="Days members stay (9999: lifetime).")
    phone_region: str = Field(default="US", min_length=2, max_length=2,
                              description="Country of phone numbers written without a country code.")

    @property
    def host(self) -> str:
        return (self.endpoint or DEFAULT_HOST).rstrip("/")


def snapchat_phone_hash(value: str, region: str) -> str:
    text = value.strip()
    if is_sha256(text):
        return text.lower()
    compact = "".join(ch for ch in text if ch not in " ()-.")
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    return hash_phone_facebook(compact, region)


def member_hash(member: dict[str, Any], settings: SnapchatAudiencesSettings) -> tuple[str, str] | None:
    """``(schema, hash)`` for one identifier, or ``None`` when Snapchat cannot match it."""
    kind, value = str(member.get("type", "")), str(member.get("value", ""))
    try:
        if kind == "email":
            return SCHEMAS[0], hash_email(value)
        if kind == "phone":
            return SCHEMAS[1], snapchat_phone_hash(value, settings.phone_region)
        if kind in _MOBILE_TYPES:
            return SCHEMAS[2], hash_mobile_id(value)
    except InvalidIdentifier:
        return None
    return None


def classify_answer(response: Response) -> Outcome:
    if response.error is not None or response.ok:
        return status_outcome(response)
    data = response.json()
    message, code = "", str(response.status)
    if isinstance(data, dict):
        message = str(data.get("debug_message") or data.get("display_message") or data.get("message") or "")[:200]
        code = str(data.get("error_code") or code)
    if response.status == 404:
        return Outcome.drop(LIST_GONE, message)
    if response.status == 403:
        return Outcome.auth(code, message)
    if response.status == 429 or response.status >= 500:
        return Outcome.retry(parse_retry_after(response.header("retry-after")), code, message)
    base = status_outcome(response)
    return Outcome(base.kind, base.retry_after, code, message=message)


def _worse(a: Outcome, b: Outcome) -> Outcome:
    rank = {"ok": 0, "retry": 1, "drop": 2, "auth": 3, "unsent": 1}
    return b if rank[b.kind] > rank[a.kind] else a


def exchange(items: Sequence[Item], settings: SnapchatAudiencesSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    json_headers = {"Content-Type": "application/json"}
    for item in items:
        message = item.message
        action = message.get("action")
        if action == "create":
            audience = message.get("audience", {})
            body = {"segments": [{"name": str(audience.get("name") or audience.get("key"))[:375],
                                  "description": f"traitsync audience {audience.get('key')}",
                                  "source_type": "FIRST_PARTY", "retention_in_days": settings.retention_in_days,
                                  "ad_account_id": settings.ad_account_id}]}
            answer = yield Request("POST", f"{settings.host}/adaccounts/{settings.ad_account_id}/segments",
                                   dumps(body), headers=json_headers, purpose="create")
            outcome = classify_answer(answer)
            data = answer.json() if outcome.kind == "ok" else None
            segments = data.get("segments") if isinstance(data, dict) else None
            first = segments[0] if isinstance(segments, list) and segments and isinstance(segments[0], dict) else {}
            segment_id = (first.get("segment") or {}).get("id") if isinstance(first.get("segment"), dict) else None
            if segment_id:
                outcome = Outcome.ok({"external_id": str(segment_id)})
            elif outcome.kind == "ok":
                outcome = Outcome.retry(code="SNAP_NO_SEGMENT_ID", message="create answered without a segment id")
            outcomes.append(outcome)
            continue
        segment = message.get("context", {}).get("personas", {}).get("external_audience_id")
        if not segment:
            outcomes.append(Outcome.drop(LIST_GONE, "no Snapchat segment id for this list yet"))
            continue
        by_schema: dict[str, dict[str, None]] = {}
        for hashed in (member_hash(m, settings) for m in message.get("members", [])):
            if hashed is not None:
                by_schema.setdefault(hashed[0], {})[hashed[1]] = None  # each identifier once per request
        result = Outcome.ok()
        method = "POST" if action == "add" else "DELETE"
        for schema in SCHEMAS:
            hashes = list(by_schema.get(schema, {}))
            for start in range(0, len(hashes), MAX_IDENTIFIERS):
                body = {"users": [{"schema": [schema], "data": [[h] for h in hashes[start:start + MAX_IDENTIFIERS]]}]}
                answer = yield Request(method, f"{settings.host}/segments/{segment}/users", dumps(body),
                                       headers=json_headers, purpose=f"{action} {schema}")
                result = _worse(result, classify_answer(answer))
                if result.kind != "ok":
                    break
            if result.kind != "ok":
                break
        outcomes.append(result)
    return outcomes


def token_request(settings: SnapchatAudiencesSettings) -> Request:
    return refresh_token_request(settings.token_url or TOKEN_URL, settings.refresh_token.get_secret_value(),
                                 client_id=settings.client_id, client_secret=settings.client_secret.get_secret_value())


def check(settings: SnapchatAudiencesSettings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.host}/adaccounts/{settings.ad_account_id}", purpose="check")


DESTINATION: Destination[SnapchatAudiencesSettings] = Destination(
    name="Snapchat Audiences",
    slug="snapchat_audiences",
    settings_model=SnapchatAudiencesSettings,
    exchange=exchange,
    auth=TokenAuth(fetch=token_request, parse=oauth_token),
    check=check,
    default_rate=10.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MAX_IDENTIFIERS,
    timeout_s=60.0,
    description="First-party customer-list segments; email, phone and mobile ids SHA-256 hashed as Snap requires.",
)
