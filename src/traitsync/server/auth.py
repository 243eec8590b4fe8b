"""Credentials for the management API (bearer token) and the Profile API (Basic secret)."""

from __future__ import annotations

import hmac

from fastapi import HTTPException, Request


def bearer_or_basic_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value:
        return value.strip()
    if scheme.lower() == "basic" and value:
        from traitsync.ingest.auth import write_key_from_header

        return write_key_from_header(header)
    return None


class ManagementAuth:
    """A dependency that admits only the configured management token."""

    def __init__(self, token: str | None) -> None:
        self.token = token

    def __call__(self, request: Request) -> None:
        given = bearer_or_basic_token(request)
        if self.token is None:
            raise HTTPException(401, detail={"code": "unauthorized", "message": "The management API is off: set "
                                             "management_api.token in traitsync.yaml"})
        if given is None or not hmac.compare_digest(given, self.token):
            raise HTTPException(401, detail={"code": "unauthorized",
                                             "message": "Send the management token as 'Authorization: Bearer "
                                             "<token>'"}, headers={"WWW-Authenticate": "Bearer"})
