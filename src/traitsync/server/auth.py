"""Credentials for the management API: Bearer tokens with roles (``tokens.py``).

``read-only`` tokens may GET; anything that changes state needs ``admin`` (403 otherwise).
The grant is left on ``request.state.grant`` so handlers can record who asked.
"""

from __future__ import annotations

from fastapi import HTTPException, Request

from traitsync.server.tokens import Grant, TokenDirectory

READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


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
    """A dependency that admits known tokens, and refuses writes to read-only ones."""

    def __init__(self, tokens: TokenDirectory | str | None) -> None:
        if tokens is None or isinstance(tokens, str):
            from traitsync.config.models import ManagementApiConfig

            tokens = TokenDirectory(ManagementApiConfig(token=tokens) if tokens else None, None)
        self.tokens = tokens

    def __call__(self, request: Request) -> None:
        given = bearer_or_basic_token(request)
        grant: Grant | None = self.tokens.grant(given) if given else None
        if grant is None:
            if not self.tokens.any():
                raise HTTPException(401, detail={"code": "unauthorized", "message": "The management API is off: set "
                                                 "management_api.token in traitsync.yaml or run traitsync tokens "
                                                 "create"})
            raise HTTPException(401, detail={"code": "unauthorized",
                                             "message": "Send a management token as 'Authorization: Bearer "
                                             "<token>'"}, headers={"WWW-Authenticate": "Bearer"})
        if request.method not in READ_METHODS and grant.role != "admin":
            raise HTTPException(403, detail={"code": "forbidden",
                                             "message": f"token {grant.name!r} is read-only; this needs an "
                                                        "admin token"})
        request.state.grant = grant


__all__ = ["ManagementAuth", "bearer_or_basic_token"]
