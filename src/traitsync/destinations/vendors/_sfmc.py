"""Salesforce Marketing Cloud auth and errors, shared by the event and the list adapter.

Auth: ``POST https://<subdomain>.auth.marketingcloudapis.com/v2/token`` with a JSON
client-credentials body (``account_id`` selects a business unit); the answer's
``rest_instance_url`` is the REST host. Tokens last about 20 minutes; a 401 refreshes once.

Errors are ``{message, errorcode, documentation, additionalErrors: [{message, errorcode}]}``;
``400`` with ``errorcode 10006`` ("Unable to save rows") and no ``additionalErrors`` is
transient and retried.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SecretStr

from traitsync.destinations.auth import Token, TokenAuth, oauth_token
from traitsync.destinations.base import DestinationSettings, Outcome, Request, Response, dumps, status_outcome

TRANSIENT = {"10006"}


class SfmcAuthSettings(DestinationSettings):
    subdomain: str = Field(pattern=r"^[a-z0-9-]{6,40}$", description="Your tenant subdomain: the prefix of "
                           "<subdomain>.auth.marketingcloudapis.com (Setup > Installed Packages).")
    client_id: str = Field(min_length=1, description="Client ID of the installed package's API integration.")
    client_secret: SecretStr = Field(description="Client secret of that integration.")
    account_id: str | None = Field(default=None, description="MID of the business unit to write to.")

    @property
    def auth_base(self) -> str:
        return (self.endpoint or f"https://{self.subdomain}.auth.marketingcloudapis.com").rstrip("/")


def rest_base(settings: SfmcAuthSettings, token: Token | None) -> str:
    if settings.endpoint:
        return settings.endpoint.rstrip("/")
    host = token.extra.get("rest_instance_url") if token is not None else None
    return (host or f"https://{settings.subdomain}.rest.marketingcloudapis.com").rstrip("/")


def token_request(settings: SfmcAuthSettings) -> Request:
    body: dict[str, Any] = {"grant_type": "client_credentials", "client_id": settings.client_id,
                            "client_secret": settings.client_secret.get_secret_value()}
    if settings.account_id:
        body["account_id"] = settings.account_id
    return Request("POST", f"{settings.auth_base}/v2/token", dumps(body),
                   headers={"Content-Type": "application/json", "Accept": "application/json"},
                   authorize=False, purpose="token")


def parse_token(response: Response) -> Token:
    return oauth_token(response, extra_keys=("rest_instance_url",))


SFMC_AUTH = TokenAuth(fetch=token_request, parse=parse_token)


def error_outcome(response: Response) -> Outcome:
    base = status_outcome(response)
    if base.kind == "ok":
        return base
    data = response.json()
    if not isinstance(data, dict):
        return base
    code = str(data.get("errorcode") or data.get("errorCode") or "")
    message = data.get("message")
    extra = data.get("additionalErrors") or []
    if extra and isinstance(extra[0], dict):
        code = str(extra[0].get("errorcode") or code)
        message = extra[0].get("message") or message
    if response.status == 400 and code in TRANSIENT and not data.get("additionalErrors"):
        return Outcome.retry(code=code, message=str(message) if message else None)
    if base.kind == "drop" and code:
        return Outcome.drop(code, str(message) if message else None)
    return base
