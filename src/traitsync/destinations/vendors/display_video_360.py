"""Google Display & Video 360 (first-party audiences, DV360 API v4, the advertiser's own OAuth).

The first sync creates a first-party Customer Match audience (``POST
/v4/firstPartyAndPartnerAudiences?advertiserId=<id>``, ``audienceType``
``CUSTOMER_MATCH_CONTACT_INFO``, named after the audience) and keeps its
``firstPartyAndPartnerAudienceId``. Adds and removes go to
``POST /v4/firstPartyAndPartnerAudiences/<id>:editCustomerMatchMembers`` with
``addedContactInfoList`` or ``removedContactInfoList``: one ``contactInfo`` per member
(``hashedEmails`` or ``hashedPhoneNumbers``) and the consent settings, 10,000 members a request.

(The other DV360 integration, Segment as a Google data partner uploading protobuf to
``cm.g.doubleclick.net``, needs Google's data-partner onboarding and is not offered.)

Hashing (reference 0.2): email trimmed, lowercased, SHA-256; phone in E.164 (``phone_region``
for numbers without a country code), SHA-256. Values already SHA-256 pass through; others that
cannot be normalised are left out. Google's JSON errors: 401 refreshes the token, 403 pauses,
404 on the audience means it was deleted (the next sync creates it again), 429 / 5xx and
``CONCURRENT_MODIFICATION`` are retried. Matching takes hours, so the floor is 6 hours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

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
    dumps,
)
from traitsync.destinations.pii import InvalidIdentifier, hash_email, hash_phone_e164
from traitsync.destinations.vendors._google import GOOGLE_AUTH, classify_google

DEFAULT_HOST = "https://displayvideo.googleapis.com/v4"
MAX_MEMBERS = 10_000
Consent = Literal["CONSENT_STATUS_GRANTED", "CONSENT_STATUS_DENIED"]


class DisplayVideo360Settings(DestinationSettings):
    advertiser_id: str = Field(pattern=r"^\d{1,20}$", description="The DV360 advertiser that owns the audiences.")
    client_id: str = Field(min_length=1, description="OAuth client id.")
    client_secret: SecretStr = Field(description="OAuth client secret.")
    refresh_token: SecretStr = Field(description="OAuth refresh token with the display-video scope.")
    token_url: str | None = Field(default=None, description="Override the OAuth token endpoint.")
    ad_user_data_consent: Consent = Field(description="Consent for ad user data, sent with every upload.")
    ad_personalization_consent: Consent = Field(description="Consent for ad personalization, sent with every upload.")
    membership_duration_days: int = Field(default=540, ge=1, le=540)
    phone_region: str = Field(default="US", min_length=2, max_length=2,
                              description="Country of phone numbers written without a country code.")

    @property
    def host(self) -> str:
        return (self.endpoint or DEFAULT_HOST).rstrip("/")


def contact_info(member: dict[str, Any], settings: DisplayVideo360Settings) -> dict[str, list[str]] | None:
    kind, value = str(member.get("type", "")), str(member.get("value", ""))
    try:
        if kind == "email":
            return {"hashedEmails": [hash_email(value)]}
        if kind == "phone":
            return {"hashedPhoneNumbers": [hash_phone_e164(value, settings.phone_region)]}
    except InvalidIdentifier:
        return None
    return None


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def exchange(items: Sequence[Item], settings: DisplayVideo360Settings, token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    audiences = f"{settings.host}/firstPartyAndPartnerAudiences"
    for item in items:
        message = item.message
        action = message.get("action")
        if action == "create":
            audience = message.get("audience", {})
            created = {"displayName": str(audience.get("name") or audience.get("key")),
                    "description": f"traitsync audience {audience.get('key')}",
                    "audienceType": "CUSTOMER_MATCH_CONTACT_INFO",
                    "audienceSource": "AUDIENCE_SOURCE_UNSPECIFIED",
                    "firstPartyAndPartnerAudienceType": "TYPE_FIRST_PARTY",
                    "membershipDurationDays": str(settings.membership_duration_days)}
            answer = yield Request("POST", f"{audiences}?advertiserId={settings.advertiser_id}", dumps(created),
                                   headers=_json(), purpose="create")
            outcome = classify_google(answer)
            if outcome.code == LIST_GONE:
                outcome = Outcome.drop("404", "DV360 answered 404 to the audience create")
            data = answer.json() if outcome.kind == "ok" else None
            audience_id = data.get("firstPartyAndPartnerAudienceId") if isinstance(data, dict) else None
            if audience_id:
                outcome = Outcome.ok({"external_id": str(audience_id)})
            elif outcome.kind == "ok":
                outcome = Outcome.retry(code="DV360_NO_AUDIENCE_ID", message="create answered without an id")
            outcomes.append(outcome)
            continue
        audience_id = message.get("context", {}).get("personas", {}).get("external_audience_id")
        if not audience_id:
            outcomes.append(Outcome.drop(LIST_GONE, "no DV360 audience id for this list yet"))
            continue
        infos = [i for i in (contact_info(m, settings) for m in message.get("members", [])) if i is not None]
        result = Outcome.ok()
        key = "addedContactInfoList" if action == "add" else "removedContactInfoList"
        consent = {"adUserData": settings.ad_user_data_consent,
                   "adPersonalization": settings.ad_personalization_consent}
        for start in range(0, len(infos), MAX_MEMBERS):
            body: dict[str, Any] = {"advertiserId": settings.advertiser_id,
                                    key: {"contactInfos": infos[start:start + MAX_MEMBERS], "consent": consent}}
            answer = yield Request("POST", f"{audiences}/{audience_id}:editCustomerMatchMembers", dumps(body),
                                   headers=_json(), purpose=str(action))
            result = classify_google(answer)
            if result.kind != "ok":
                break
        outcomes.append(result)
    return outcomes


def check(settings: DisplayVideo360Settings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.host}/advertisers/{settings.advertiser_id}", purpose="check")


DESTINATION: Destination[DisplayVideo360Settings] = Destination(
    name="Google Display & Video 360",
    slug="display_video_360",
    settings_model=DisplayVideo360Settings,
    exchange=exchange,
    auth=GOOGLE_AUTH,
    check=check,
    default_rate=5.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=21600.0,
    list_id_before_members=True,
    members_per_operation=MAX_MEMBERS,
    timeout_s=60.0,
    description="First-party Customer Match audiences (DV360 API v4); email and phone SHA-256 hashed.",
)
