"""Salesforce OAuth 2.0 shared by the Salesforce CRM and Pardot adapters.

Both authenticate against the Salesforce login host (``login.salesforce.com``, or
``test.salesforce.com`` for a sandbox) with the refresh-token grant of a connected app. The token
answer carries ``instance_url``: the org's API host, which the CRM adapter writes to.
"""

from __future__ import annotations

from typing import Any

from traitsync.destinations.auth import Token, TokenAuth, oauth_token, refresh_token_request
from traitsync.destinations.base import Request, Response

LOGIN = "https://login.salesforce.com"
SANDBOX_LOGIN = "https://test.salesforce.com"


def login_host(settings: Any, *, sandbox: bool) -> str:
    endpoint: str | None = getattr(settings, "endpoint", None)
    return (endpoint or (SANDBOX_LOGIN if sandbox else LOGIN)).rstrip("/")


def token_request(settings: Any, *, sandbox: bool) -> Request:
    return refresh_token_request(f"{login_host(settings, sandbox=sandbox)}/services/oauth2/token",
                                 settings.refresh_token.get_secret_value(), client_id=settings.client_id,
                                 client_secret=settings.client_secret.get_secret_value())


def parse_token(response: Response) -> Token:
    """Salesforce's answer has no ``expires_in``: the session lives as long as the org's timeout
    policy, and a 401 ``INVALID_SESSION_ID`` says when it ended (delivery refreshes then)."""
    return oauth_token(response, extra_keys=("instance_url",))


def salesforce_auth(sandbox_of: Any) -> TokenAuth:
    return TokenAuth(fetch=lambda s: token_request(s, sandbox=bool(sandbox_of(s))), parse=parse_token)
