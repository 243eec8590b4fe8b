"""Segment's Tracking API: ``POST /v1/identify|track|page|screen|group|alias|batch|import``.

Answers follow Segment: 200 for accepted requests (also when some batch items are refused:
the good items are kept and each refused one is named with its code), 400 with
``{"code", "message"}`` for invalid JSON and oversize requests, 401 ``unknown_source``.
Beyond Segment: 503 with ``Retry-After`` when the log cannot commit (nothing is acknowledged
that is not durable), and an optional per-source 429.
"""

from __future__ import annotations

import asyncio
import math
import time
import zlib
from collections.abc import Mapping
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from traitsync.errors import StorageUnavailable
from traitsync.ingest.appender import Appender
from traitsync.ingest.auth import SourceDirectory
from traitsync.ingest.metrics import IngestMetrics
from traitsync.ingest.ratelimit import RequestBucket
from traitsync.log import SourceBatch
from traitsync.spec.validate import Accepted, Rejection, merge_batch_defaults, normalise

SINGLE_CALL_LIMIT = 32 * 1024
BATCH_LIMIT = 500 * 1024
EVENT_LIMIT = 32 * 1024
MAX_BATCH_ITEMS = 2500
STORAGE_RETRY_AFTER_SECONDS = 5
SINGLE_TYPES = ("identify", "track", "page", "screen", "group", "alias")

_JSON = "application/json"


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type=_JSON, headers=headers)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return _json(status, {"code": code, "message": message}, headers)


class BodyTooLarge(Exception):
    pass


def _decode_body(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The request body, un-gzipped; never inflates more than ``limit + 1`` bytes (gzip bombs)."""
    if not encoding or encoding.lower() == "identity":
        if len(raw) > limit:
            raise BodyTooLarge
        return raw
    if encoding.lower() not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    wbits = 16 + zlib.MAX_WBITS if "gzip" in encoding.lower() else zlib.MAX_WBITS
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise ValueError(f"the body is not valid {encoding}: {exc}") from exc
    if len(out) > limit or inflater.unconsumed_tail:
        raise BodyTooLarge
    return out


class TrackingApi:
    """The routes plus what they need: sources, the writer, metrics and per-source limits."""

    def __init__(self, sources: SourceDirectory, appender: Appender, metrics: IngestMetrics,
                 debugger: Any = None) -> None:
        self.sources = sources
        self.appender = appender
        self.metrics = metrics
        self.buckets: dict[str, RequestBucket] = {}
        for source in sources.by_id.values():
            if source.rate_limit is not None:
                self.buckets[source.id] = RequestBucket(source.rate_limit.requests_per_second,
                                                        source.rate_limit.burst)
        self.debugger = debugger

    def router(self) -> APIRouter:
        router = APIRouter(tags=["Tracking API"])
        for kind in SINGLE_TYPES:
            router.add_api_route(
                f"/v1/{kind}", self._single_handler(kind), methods=["POST"],
                summary=f"Record one {kind} call", openapi_extra=_openapi_body(kind), response_model=None,
                responses=_RESPONSES)
        for path in ("/v1/batch", "/v1/import"):
            router.add_api_route(
                path, self._batch_handler(path), methods=["POST"],
                summary="Record up to 2,500 calls in one request" + (" (alias of /v1/batch)"
                                                                     if path == "/v1/import" else ""),
                openapi_extra=_openapi_body("batch"), response_model=None, responses=_RESPONSES)
        return router

    def _single_handler(self, kind: str) -> Any:
        async def handler(request: Request) -> Response:
            return await self._handle(request, kind, f"/v1/{kind}")

        handler.__name__ = f"post_{kind}"
        return handler

    def _batch_handler(self, path: str) -> Any:
        async def handler(request: Request) -> Response:
            return await self._handle(request, None, path)

        handler.__name__ = "post_" + path.rsplit("/", 1)[-1]
        return handler

    async def _handle(self, request: Request, kind: str | None, route: str) -> Response:
        headers = request.headers
        declared = headers.get("content-length")
        limit = read_limit(kind)
        raw = b"" if declared and declared.isdigit() and int(declared) > limit else await request.body()
        return await self.handle(headers, raw, kind, route)

    async def handle(self, headers: Mapping[str, str], raw: bytes, kind: str | None, route: str) -> Response:
        """Answer one request from its (lower-case) headers and raw body; counts it in the metrics.

        Both the FastAPI routes and the fast path (``fast_path.py``) call this, so the two can
        never answer differently.
        """
        response = await self._process(headers, raw, kind)
        self.metrics.requests.labels(route, str(response.status_code)).inc()
        return response

    async def _process(self, headers: Mapping[str, str], raw: bytes, kind: str | None) -> Response:
        limit = SINGLE_CALL_LIMIT if kind is not None else BATCH_LIMIT
        content_type = headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type and content_type not in (_JSON, "text/plain"):
            return _error(400, "bad_request", f"Content-Type must be application/json, not {content_type!r}")
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > read_limit(kind):
            return _too_large(kind, limit)
        if len(raw) > read_limit(kind):
            return _too_large(kind, limit)
        try:
            body_bytes = _decode_body(raw, headers.get("content-encoding"), limit)
        except BodyTooLarge:
            return _too_large(kind, limit)
        except ValueError as exc:
            return _error(400, "bad_request", str(exc))
        try:
            body = orjson.loads(body_bytes) if body_bytes else None
        except orjson.JSONDecodeError as exc:
            return _error(400, "bad_request", f"Invalid JSON: {exc}")
        if not isinstance(body, dict):
            return _error(400, "bad_request", "The body must be a JSON object")

        source = self.sources.resolve(headers.get("authorization"), body)
        if source is None:
            return _error(401, "unknown_source", "Unknown or missing write key: send it as the Basic-auth "
                          "user name, or as writeKey in the body")
        if not source.enabled:
            return _error(403, "source_disabled", f"Source {source.id} is disabled")
        bucket = self.buckets.get(source.id)
        if bucket is not None:
            wait = bucket.try_take()
            if wait > 0:
                seconds = str(max(1, math.ceil(wait)))
                return _error(429, "too_many_requests", f"Source {source.id} is over its rate limit",
                              {"Retry-After": seconds, "X-RateLimit-Reset": seconds})

        received_ms = int(time.time() * 1000)
        accepted: list[Accepted] = []
        rejected: list[tuple[Rejection, Any]] = []
        if kind is not None:
            result = normalise(body, received_at_ms=received_ms, default_type=kind)
            if isinstance(result, Rejection):
                rejected.append((result, body))
            else:
                accepted.append(result)
        else:
            items = body.get("batch")
            if not isinstance(items, list):
                return _error(400, "bad_request", "batch must be an array of messages")
            if len(items) > MAX_BATCH_ITEMS:
                return _error(400, "bad_request", f"batch has {len(items)} items; at most {MAX_BATCH_ITEMS} "
                              "are allowed per request")
            if not items:
                rejected.append((Rejection("empty_batch", "batch is empty"), None))
            context, integrations, sent_at = body.get("context"), body.get("integrations"), body.get("sentAt")
            # Only a body over 32 KB can hold an item over 32 KB: skip re-serialising otherwise.
            check_items = len(body_bytes) > EVENT_LIMIT
            for index, item in enumerate(items):
                if check_items and isinstance(item, dict) and len(orjson.dumps(item)) > EVENT_LIMIT:
                    rej = Rejection("event_too_large", f"message is over {EVENT_LIMIT // 1024} KB", index,
                                    item.get("messageId") if isinstance(item.get("messageId"), str) else None)
                    rejected.append((rej, {"messageId": rej.message_id, "type": item.get("type")}))
                    continue
                merged = merge_batch_defaults(item, context, integrations)
                result = normalise(merged, received_at_ms=received_ms, batch_sent_at=sent_at)
                if isinstance(result, Rejection):
                    result.index = index
                    rejected.append((result, item))
                else:
                    accepted.append(result)
            if items and not accepted:
                rejected.append((Rejection("empty_batch_result", "no message in the batch was valid"), None))

        started = time.perf_counter()
        try:
            future = self.appender.submit(SourceBatch(source.id, accepted, rejected))
            outcome = await asyncio.wrap_future(future)
        except StorageUnavailable:
            return _error(503, "storage_unavailable", "The event log cannot commit right now; nothing from "
                          "this request was stored. Retry after the delay.",
                          {"Retry-After": str(STORAGE_RETRY_AFTER_SECONDS)})
        self.metrics.append_latency.observe(time.perf_counter() - started)
        if outcome.inserted:
            self.metrics.accepted.labels(source.id).inc(outcome.inserted)
        if outcome.duplicates:
            self.metrics.duplicates.labels(source.id).inc(outcome.duplicates)
        for rej, _ in rejected:
            self.metrics.rejected.labels(source.id, rej.code).inc()
        answer: dict[str, Any] = {"success": True}
        if kind is None:
            answer.update(accepted=outcome.inserted, duplicates=outcome.duplicates)
            item_errors = [r for r, _ in rejected if r.index is not None]
            if item_errors:
                answer["code"] = "multi_user_error"
                answer["rejected"] = [{"index": r.index, "code": r.code, "message": r.message} for r in item_errors]
            elif rejected:
                answer["code"] = rejected[0][0].code
                answer["rejected"] = []
        elif rejected:
            rej = rejected[0][0]
            answer = {"success": False, "code": rej.code, "message": rej.message}
        return _json(200, answer)


def read_limit(kind: str | None) -> int:
    """How many raw (possibly gzipped) bytes a request may carry before it is refused unread."""
    return (SINGLE_CALL_LIMIT if kind is not None else BATCH_LIMIT) * 4 + 1024


def _too_large(kind: str | None, limit: int) -> Response:
    what = "single call" if kind is not None else "batch"
    return _error(400, "bad_request", f"Request body is over the {limit // 1024} KB limit for a {what}")


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "Accepted (a batch may name refused items under `rejected`)"},
    400: {"description": "Invalid JSON or oversize request: `{\"code\", \"message\"}`"},
    401: {"description": "`unknown_source`: missing or unknown write key"},
    429: {"description": "The source is over its rate limit; see Retry-After"},
    503: {"description": "The event log cannot commit; nothing stored; see Retry-After"},
}


def _openapi_body(kind: str) -> dict[str, Any]:
    if kind == "batch":
        schema: dict[str, Any] = {
            "type": "object", "required": ["batch"],
            "properties": {"batch": {"type": "array", "maxItems": MAX_BATCH_ITEMS,
                                     "items": {"type": "object"}},
                           "context": {"type": "object"}, "integrations": {"type": "object"},
                           "writeKey": {"type": "string"}, "sentAt": {"type": "string", "format": "date-time"}},
        }
    else:
        props: dict[str, Any] = {
            "userId": {"type": "string"}, "anonymousId": {"type": "string"},
            "messageId": {"type": "string", "maxLength": 100},
            "timestamp": {"type": "string", "format": "date-time"},
            "sentAt": {"type": "string", "format": "date-time"},
            "context": {"type": "object"}, "integrations": {"type": "object"}, "writeKey": {"type": "string"},
        }
        if kind == "track":
            props.update(event={"type": "string"}, properties={"type": "object"})
        elif kind in ("identify", "group"):
            props["traits"] = {"type": "object"}
            if kind == "group":
                props["groupId"] = {"type": "string"}
        elif kind in ("page", "screen"):
            props.update(name={"type": "string"}, properties={"type": "object"})
            if kind == "page":
                props["category"] = {"type": "string"}
        elif kind == "alias":
            props["previousId"] = {"type": "string"}
        schema = {"type": "object", "properties": props}
    return {"requestBody": {"required": True, "content": {_JSON: {"schema": schema}}},
            "security": [{"writeKey": []}]}


__all__ = ["BATCH_LIMIT", "MAX_BATCH_ITEMS", "SINGLE_CALL_LIMIT", "TrackingApi"]
