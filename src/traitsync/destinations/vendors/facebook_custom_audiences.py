"""Facebook (Meta) Custom Audiences: an audience becomes a customer-list custom audience.

The first sync creates the audience in the ad account (``POST /act_<id>/customaudiences``,
named after the audience) and keeps its id; uploads then add and remove members with
``POST`` / ``DELETE /<audience_id>/users`` in rows of up to 10,000. Each member goes as one
row of the schema ``EMAIL, PHONE, MADID, EXTERN_ID``: email and phone normalised and SHA-256
hashed as Meta requires (email trimmed and lowercased; phone as digits with the country code,
no leading zeros), mobile advertising ids raw but lowercased, and ``user_id`` as the raw
``EXTERN_ID`` only when ``send_user_id`` is on. A value that is already a SHA-256 passes
through; a value that cannot be normalised (a malformed phone) is left out of the upload,
never sent in plain text.

Meta answers errors as ``{"error": {"code", "error_subcode", "message"}}``: rate-limit codes
(4, 17, 32, 613, 80003) and temporary ones (1, 2, 341, 368, 5000) are retried; 190 (token
invalid) and permission codes (10, 200, 294) pause the destination; an audience that no longer
exists (100 with subcode 33, 1487301, 1487366) is recreated by the next sync.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
    Response,
    dumps,
    parse_retry_after,
    status_outcome,
)
from traitsync.destinations.pii import (
    InvalidIdentifier,
    hash_email,
    hash_phone_facebook,
    normalize_mobile_id,
)
from traitsync.destinations.vendors._lists import Step, audience_key, audience_name, created, list_exchange

DEFAULT_HOST = "https://graph.facebook.com/v24.0"
MAX_ROWS = 10_000
SCHEMA = ("EMAIL", "PHONE", "MADID", "EXTERN_ID")
_RETRY_CODES = frozenset({1, 2, 4, 17, 32, 341, 368, 613, 5000, 80003})
_AUTH_CODES = frozenset({10, 190, 200, 294})
_GONE_SUBCODES = frozenset({33, 1487301, 1487366})
_MOBILE_TYPES = frozenset({"ios.idfa", "android.idfa"})


class FacebookCustomAudiencesSettings(DestinationSettings):
    access_token: SecretStr = Field(description="A system-user access token with the ads_management permission.")
    ad_account_id: str = Field(pattern=r"^(act_)?\d+$", description="The ad account that owns the audiences.")
    customer_file_source: Literal["USER_PROVIDED_ONLY", "PARTNER_PROVIDED_ONLY",
                                  "BOTH_USER_AND_PARTNER_PROVIDED"] = "BOTH_USER_AND_PARTNER_PROVIDED"
    send_user_id: bool = Field(default=False, description="Also send user_id as EXTERN_ID (raw, not hashed).")
    phone_region: str = Field(default="US", min_length=2, max_length=2,
                              description="Country of phone numbers written without a country code.")

    @property
    def host(self) -> str:
        return (self.endpoint or DEFAULT_HOST).rstrip("/")

    @property
    def account(self) -> str:
        return self.ad_account_id if self.ad_account_id.startswith("act_") else f"act_{self.ad_account_id}"


def member_row(member: dict[str, Any], settings: FacebookCustomAudiencesSettings) -> list[str] | None:
    """One upload row for one identifier, or ``None`` when Meta cannot match that identifier."""
    kind, value = str(member.get("type", "")), str(member.get("value", ""))
    row = [""] * len(SCHEMA)
    try:
        if kind == "email":
            row[0] = hash_email(value)
        elif kind == "phone":
            row[1] = hash_phone_facebook(value, settings.phone_region)
        elif kind in _MOBILE_TYPES:
            row[2] = normalize_mobile_id(value)
        elif kind == "user_id" and settings.send_user_id:
            row[3] = value
        else:
            return None
    except InvalidIdentifier:
        return None
    return row


def _headers(settings: FacebookCustomAudiencesSettings) -> dict[str, str]:
    return {"Content-Type": "application/json",
            "Authorization": f"Bearer {settings.access_token.get_secret_value()}"}


def classify_answer(response: Response) -> Outcome:
    """Meta's error envelope by code; everything else by the status table."""
    if response.error is not None or response.ok:
        return status_outcome(response)
    data = response.json()
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return status_outcome(response)
    code, subcode = error.get("code"), error.get("error_subcode")
    label = f"FB_{code}" + (f"_{subcode}" if subcode else "")
    message = str(error.get("message", ""))[:200]
    if code in _RETRY_CODES:
        return Outcome.retry(parse_retry_after(response.header("retry-after")), label, message)
    if code in _AUTH_CODES:
        return Outcome.auth(label, message)
    if subcode in _GONE_SUBCODES or code in _GONE_SUBCODES:
        return Outcome.drop(LIST_GONE, message)
    return Outcome.drop(label, message)


def _create(message: Mapping[str, Any], settings: FacebookCustomAudiencesSettings, _token: Token | None) -> Step:
    body = {"name": audience_name(message), "subtype": "CUSTOM", "customer_file_source": settings.customer_file_source,
            "description": f"traitsync audience {audience_key(message)}"}
    answer = yield Request("POST", f"{settings.host}/{settings.account}/customaudiences", dumps(body),
                           headers=_headers(settings), purpose="create")
    outcome = classify_answer(answer)
    data = answer.json() if outcome.kind == "ok" else None
    return created(outcome, data.get("id") if isinstance(data, dict) else None, "FB")


def _upload(message: Mapping[str, Any], settings: FacebookCustomAudiencesSettings, _token: Token | None,
            action: str, audience_id: str) -> Step:
    rows = [r for r in (member_row(m, settings) for m in message.get("members", [])) if r is not None]
    if not rows:
        return Outcome.ok()  # no member Meta can match: nothing to send
    body = {"payload": {"schema": list(SCHEMA), "data": rows}}
    answer = yield Request("POST" if action == "add" else "DELETE", f"{settings.host}/{audience_id}/users",
                           dumps(body), headers=_headers(settings), purpose=action)
    return classify_answer(answer)


def exchange(items: Sequence[Item], settings: FacebookCustomAudiencesSettings, token: Token | None) -> Exchange:
    """One request per list operation (each operation carries at most ``MAX_ROWS`` members)."""
    return list_exchange(items, settings, token, vendor="Facebook", create=_create, upload=_upload)


def check(settings: FacebookCustomAudiencesSettings, _token: Token | None) -> Request:
    return Request("GET", f"{settings.host}/{settings.account}?fields=id,name", headers=_headers(settings),
                   purpose="check")


DESTINATION: Destination[FacebookCustomAudiencesSettings] = Destination(
    name="Facebook Custom Audiences",
    slug="facebook_custom_audiences",
    settings_model=FacebookCustomAudiencesSettings,
    exchange=exchange,
    check=check,
    default_rate=10.0,
    max_batch=1,
    modes=frozenset({"list"}),
    min_list_interval_s=3600.0,
    list_id_before_members=True,
    members_per_operation=MAX_ROWS,
    min_list_size=100,
    description="Customer-list custom audiences; email and phone hashed as Meta requires.",
)
