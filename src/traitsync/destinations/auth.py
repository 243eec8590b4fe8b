"""Credentials a vendor hands out: how to ask for a token, read it, apply it, and see it expire.

A ``TokenAuth`` is pure description, like the rest of an adapter: ``fetch`` builds the token
request from the settings (OAuth client credentials, OAuth refresh token, a username/password
login), ``parse`` reads the answer into a ``Token``, ``apply`` puts the token on a request, and
``expired`` recognises the vendor's "this token is no longer good" answer (a 401 for OAuth
vendors; Marketo answers 200 with error 601 or 602 in the body). Delivery's token cache
(``delivery/tokens.py``) does the fetching, caching per destination and refreshing, both ahead
of expiry and after an ``expired`` answer, without counting the refresh as a failed attempt.

The form bodies of the OAuth grants (RFC 6749 4.4 and 6) are prepared with authlib, and expiry
uses authlib's ``OAuth2Token`` (``expires_in`` to ``expires_at``, a leeway before it).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from authlib.oauth2.rfc6749 import OAuth2Token
from authlib.oauth2.rfc6749.parameters import prepare_token_request

from traitsync.destinations.http import Request, Response

FORM = "application/x-www-form-urlencoded"


class TokenRejected(Exception):
    """The vendor refused to hand out a token (bad client id/secret, revoked refresh token)."""

    def __init__(self, message: str, *, code: str = "TOKEN_REJECTED", retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.retryable = retryable


@dataclass(frozen=True)
class Token:
    """An access token with its expiry (epoch seconds, None if the vendor does not say) and
    anything else the answer carried that requests need (Salesforce ``instance_url``,
    Responsys ``endPoint``)."""

    value: str
    expires_at: float | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        if self.expires_at is None:
            return False
        return (time.time() if now is None else now) >= self.expires_at - seconds


def bearer(request: Request, token: Token) -> Request:
    return request.with_headers(Authorization=f"Bearer {token.value}")


def unauthorized(response: Response) -> bool:
    return response.status == 401


@dataclass(frozen=True)
class TokenAuth:
    """How one vendor issues tokens (see the module docstring)."""

    fetch: Callable[[Any], Request]
    parse: Callable[[Response], Token]
    apply: Callable[[Request, Token], Request] = bearer
    expired: Callable[[Response], bool] = unauthorized
    #: Refresh this long before the vendor's stated expiry, so a request never leaves with a token
    #: that dies on the way.
    leeway_s: float = 60.0


def oauth_token(response: Response, *, value_key: str = "access_token",
                extra_keys: tuple[str, ...] = ()) -> Token:
    """Read an OAuth 2.0 token answer (RFC 6749 5.1); a refusal (5.2) raises ``TokenRejected``."""
    data = response.json()
    if response.error is not None or response.status >= 500 or response.status == 429:
        raise TokenRejected(f"token endpoint unavailable ({response.error or response.status})",
                            code=response.error or str(response.status), retryable=True)
    if not response.ok or not isinstance(data, dict) or not data.get(value_key):
        reason = data.get("error_description") or data.get("error") if isinstance(data, dict) else None
        raise TokenRejected(f"token endpoint answered {response.status}: {reason or 'no access token'}",
                            code=str(response.status) if response.status else "TOKEN_REJECTED")
    token = OAuth2Token.from_dict({"access_token": data[value_key],
                                   **({"expires_in": int(data["expires_in"])} if data.get("expires_in") else {})})
    expires_at = token.get("expires_at")
    return Token(str(data[value_key]), float(expires_at) if expires_at else None,
                 {k: str(data[k]) for k in extra_keys if data.get(k) is not None})


def client_credentials_request(url: str, client_id: str, client_secret: str, *, scope: str | None = None,
                               in_query: bool = False, **extra: str) -> Request:
    """An OAuth client-credentials grant (RFC 6749 4.4); Marketo wants it in the query string."""
    params: dict[str, Any] = {"client_id": client_id, "client_secret": client_secret, **extra}
    if scope:
        params["scope"] = scope
    body = prepare_token_request("client_credentials", **params)
    if in_query:
        return Request("GET", f"{url}?{body}", authorize=False, purpose="token")
    return Request("POST", url, body.encode("ascii"), headers={"Content-Type": FORM, "Accept": "application/json"},
                   authorize=False, purpose="token")


def refresh_token_request(url: str, refresh_token: str, *, client_id: str | None = None,
                          client_secret: str | None = None) -> Request:
    """An OAuth refresh-token grant (RFC 6749 6)."""
    params: dict[str, Any] = {"refresh_token": refresh_token}
    if client_id:
        params["client_id"] = client_id
    if client_secret:
        params["client_secret"] = client_secret
    body = prepare_token_request("refresh_token", **params)
    return Request("POST", url, body.encode("ascii"), headers={"Content-Type": FORM, "Accept": "application/json"},
                   authorize=False, purpose="token")


def password_request(url: str, fields: Mapping[str, str]) -> Request:
    """A username/password login posted as a form (Responsys ``auth/token``, Salesforce password grant)."""
    from urllib.parse import urlencode

    return Request("POST", url, urlencode(dict(fields)).encode("ascii"),
                   headers={"Content-Type": FORM, "Accept": "application/json"}, authorize=False, purpose="token")
