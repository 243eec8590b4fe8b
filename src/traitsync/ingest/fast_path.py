"""Serve the Tracking API routes as plain ASGI, ahead of the web framework.

A single ``/v1/track`` call spent more time in the framework's layers (error middleware,
exception handling, exit stacks, router matching across every router, the Request object)
than in validating and storing the event. The routes are still declared on the FastAPI app,
so OpenAPI documents them; this middleware answers them first, through the same
``TrackingApi.handle`` so the two paths cannot differ.
"""

from __future__ import annotations

from typing import Any

import orjson
import structlog

from traitsync.ingest.tracking_api import SINGLE_TYPES, TrackingApi

log = structlog.get_logger("traitsync.ingest")

_ROUTES: dict[str, str | None] = {f"/v1/{kind}": kind for kind in SINGLE_TYPES}
_ROUTES.update({"/v1/batch": None, "/v1/import": None})
_INTERNAL = orjson.dumps({"code": "internal_error", "message": "The server failed to handle this request; "
                          "nothing from it was stored. Retry it."})

Scope = dict[str, Any]


class TrackingFastPath:
    """ASGI middleware: POSTs to the Tracking API paths go straight to ``TrackingApi.handle``."""

    def __init__(self, app: Any, tracking: TrackingApi) -> None:
        self.app = app
        self.tracking = tracking

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in _ROUTES:
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        kind = _ROUTES[path]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            raw = await _read_body(receive, self.tracking.read_limit(headers, kind))
            response = await self.tracking.handle(headers, raw, kind, path)
            status, body = response.status_code, bytes(response.body)
            out_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        except Exception:  # a bug must still answer JSON, and say that nothing was stored
            log.exception("tracking request failed", path=path)
            status, body = 500, _INTERNAL
            out_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": body})


async def _read_body(receive: Any, limit: int) -> bytes:
    """The whole body, but never more than ``limit + 1`` bytes: the caller refuses anything larger."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        if size <= limit:
            chunks.append(chunk)
        size += len(chunk)
        more = message.get("more_body", False)
    body = b"".join(chunks)
    return body[: limit + 1]
