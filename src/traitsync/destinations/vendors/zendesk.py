"""Zendesk Support: users created or updated with audience and trait user fields.

Auth: HTTP Basic ``<agent email>/token:<api token>``, or ``Authorization: Bearer <OAuth token>``.

Every message becomes ``POST /api/v2/users/create_or_update.json {user:{name, email?,
external_id?, user_fields:{<key>: value}}}``: Zendesk matches the user on ``external_id`` or
``email``, answers 201 (created) or 200 (updated). ``name`` is required to create a user, so the
adapter asks activation for the profile's ``name`` trait (``required_traits``); without one it
uses the email. Tracks (Zendesk has no custom event API for Support users) set the same user field.

Answers: 429 carries ``Retry-After`` (seconds), honoured; 409 (a concurrent edit) and 5xx are
retried; 422 ``RecordInvalid`` (e.g. a user field that does not exist, a bad email) drops the
message with Zendesk's ``details`` error code.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from typing import Any

from pydantic import Field, SecretStr, ValidationInfo, field_validator

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

STANDARD = {"email", "name", "phone", "external_id"}


class ZendeskSettings(DestinationSettings):
    subdomain: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="The <subdomain> of "
                           "https://<subdomain>.zendesk.com.")
    email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$", description="Agent email the API "
                              "token belongs to (Basic auth).")
    api_token: SecretStr | None = Field(default=None, description="Zendesk API token (Admin Center > Apps and "
                                        "integrations > Zendesk API).")
    oauth_token: SecretStr | None = Field(default=None, validate_default=True,
                                          description="OAuth access token, instead of email + api_token.")

    @field_validator("oauth_token", mode="after")
    @classmethod
    def _one_credential(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        has_basic = info.data.get("api_token") is not None
        if value is None and not has_basic:
            raise ValueError("set api_token (with email) or oauth_token")
        if has_basic and not info.data.get("email"):
            raise ValueError("api_token needs the agent `email` it belongs to")
        return value

    @property
    def base(self) -> str:
        return (self.endpoint or f"https://{self.subdomain}.zendesk.com").rstrip("/")

    def authorization(self) -> str:
        if self.oauth_token is not None:
            return f"Bearer {self.oauth_token.get_secret_value()}"
        assert self.api_token is not None and self.email is not None
        pair = f"{self.email}/token:{self.api_token.get_secret_value()}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def secrets(self) -> list[str]:
        """The Basic credentials travel base64-encoded: redact that form as well."""
        out = super().secrets()
        if self.oauth_token is None and self.api_token is not None:
            out.append(self.authorization().removeprefix("Basic "))
        return out


def field_key(key: str) -> str:
    """Zendesk user field keys: lowercase letters, digits and underscores."""
    return re.sub(r"[^a-z0-9_]", "_", key.lower()).strip("_") or "field"


def user_body(item: Item, email: str | None, external_id: str | None) -> dict[str, Any] | None:
    change = change_of(item.message)
    attributes = {change.key: change.value} if change.is_track and change.key else change.attributes
    name = text(attributes.get("name")) or text(item.traits.get("name")) or text(item.fields.get("name")) or email
    if name is None:
        return None
    user: dict[str, Any] = {"name": name}
    if email:
        user["email"] = email
    if external_id:
        user["external_id"] = external_id
    if text(attributes.get("phone")):
        user["phone"] = text(attributes.get("phone"))
    user["user_fields"] = {field_key(str(k)): scalar(v) for k, v in attributes.items() if k not in STANDARD}
    return {"user": user}


def answer_outcome(response: Response) -> Outcome:
    base = status_outcome(response)
    if base.kind == "ok":
        data = response.json()
        user = data.get("user") if isinstance(data, dict) else None
        return Outcome.ok({"user_id": str(user["id"])} if isinstance(user, dict) and user.get("id") else None)
    data = response.json()
    if response.status == 409:
        return Outcome.retry(base.retry_after, "409", "concurrent edit")
    if base.kind == "drop" and isinstance(data, dict):
        code = str(data.get("error") or base.code)
        message = data.get("description")
        details = data.get("details")
        if isinstance(details, dict):
            for problems in details.values():
                if isinstance(problems, list) and problems and isinstance(problems[0], dict):
                    message = problems[0].get("description") or message
                    break
        return Outcome.drop(code, str(message) if message else None)
    return base


def exchange(items: Sequence[Item], settings: ZendeskSettings, token: Token | None) -> Exchange:
    outcomes: list[Outcome] = []
    headers = {"Authorization": settings.authorization(), "Content-Type": "application/json",
               "Accept": "application/json"}
    for i, item in enumerate(items):
        email = text(item.fields.get("email"))
        external_id = text(item.fields.get("external_id"))
        if email is None and external_id is None:
            outcomes.append(Outcome.drop("MISSING_IDENTIFIER", "Zendesk matches users on email or external_id"))
            continue
        body = user_body(item, email, external_id)
        if body is None:
            outcomes.append(Outcome.drop("MISSING_NAME", "Zendesk needs a name to create a user; attach the "
                                         "profile's `name` trait"))
            continue
        answer = yield Request("POST", f"{settings.base}/api/v2/users/create_or_update.json", dumps(body), (i,),
                               headers=headers)
        outcomes.append(answer_outcome(answer))
    return outcomes


def check(settings: ZendeskSettings, token: Token | None) -> Request:
    return Request("GET", f"{settings.base}/api/v2/users/me.json",
                   headers={"Authorization": settings.authorization(), "Accept": "application/json"}, purpose="check")


DESTINATION: Destination[ZendeskSettings] = Destination(
    name="Zendesk",
    slug="zendesk",
    settings_model=ZendeskSettings,
    exchange=exchange,
    default_rate=50.0,
    max_batch=10,
    event_types=frozenset({"identify", "track"}),
    default_mappings={"email": EMAIL_MAPPING, "external_id": {"@first": ["$.userId"]}},
    required_traits=frozenset({"name"}),
    check=check,
    description="Create or update Zendesk users with audience and computed-trait user fields.",
)
