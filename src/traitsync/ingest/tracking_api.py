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

from traitsync.config.models import SourceConfig
from traitsync.errors import StorageUnavailable
from traitsync.ingest.appender import Appender
from traitsync.ingest.auth import SourceDirectory
from traitsync.ingest.metrics import IngestMetrics
from traitsync.ingest.ratelimit import RequestBucket
from traitsync.ingest.suppressions import SUPPRESSED, SUPPRESSED_MESSAGE, Suppressions
from traitsync.log import SourceBatch
from traitsync.spec.validate import Accepted, Rejection, merge_batch_defaults, normalise

SINGLE_CALL_LIMIT = 32 * 1024
BATCH_LIMIT = 500 * 1024
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


class _Refused(Exception):
    """A whole request refused before any of its messages is looked at (status 400)."""

    def __init__(self, message: str, source_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.source_id = source_id


def _decode_body(raw: bytes, encoding: str | None, limit: int) -> bytes:
    """The request body, un-gzipped; never inflates more than ``limit + 1`` bytes (gzip bombs).

    A gzip stream must be complete: a body cut short (no trailer, so no checksum) is refused,
    since its last message may be cut in the middle of a value that still parses.
    """
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
    if not inflater.eof:
        raise ValueError(f"the {encoding} body is incomplete (it ends before its trailer); resend the whole request")
    return out


class TrackingApi:
    """The routes plus what they need: sources, the writer, metrics and per-source limits."""

    def __init__(self, sources: SourceDirectory, appender: Appender, metrics: IngestMetrics,
                 debugger: Any = None, suppressions: Suppressions | None = None) -> None:
        self.sources = sources
        self.suppressions = suppressions
        self.appender = appender
        self.metrics = metrics
        self.buckets: dict[str, RequestBucket] = {}
        for source in sources.by_id.values():
            if source.rate_limit is not None:
                self.buckets[source.id] = RequestBucket(source.rate_limit.requests_per_second,
                                                        source.rate_limit.burst)
        self.debugger = debugger
        limits = [s.limits for s in sources.by_id.values()]
        self._max_message = max((lim.message for lim in limits), default=SINGLE_CALL_LIMIT)
        self._max_batch = max((lim.batch for lim in limits), default=BATCH_LIMIT)

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
        limit = self.read_limit(headers, kind)
        raw = b"" if declared and declared.isdigit() and int(declared) > limit else await request.body()
        return await self.handle(headers, raw, kind, route)

    def _limit(self, source: SourceConfig | None, kind: str | None) -> int:
        """Bytes a request may hold once un-gzipped: the source's limit, or the largest of all sources."""
        if source is not None:
            return source.limits.message if kind is not None else source.limits.batch
        return self._max_message if kind is not None else self._max_batch

    def read_limit(self, headers: Mapping[str, str], kind: str | None) -> int:
        """How many raw (possibly gzipped) bytes a request may carry before it is refused unread."""
        return self._limit(self.sources.resolve(headers.get("authorization"), None), kind) * 4 + 1024

    async def handle(self, headers: Mapping[str, str], raw: bytes, kind: str | None, route: str) -> Response:
        """Answer one request from its (lower-case) headers and raw body; counts it in the metrics.

        Both the FastAPI routes and the fast path (``fast_path.py``) call this, so the two can
        never answer differently. A refused request whose source is known is recorded like a
        refused message (``log stats``, the source debugger); one without a known write key is
        only counted in the metrics, so that strangers cannot make the server write.
        """
        try:
            response = await self._process(headers, raw, kind)
        except _Refused as refused:
            response = _error(400, "bad_request", refused.message)
            if refused.source_id is not None:
                await self._record_refusal(refused, headers, raw, route)
        self.metrics.requests.labels(route, str(response.status_code)).inc()
        return response

    async def _record_refusal(self, refused: _Refused, headers: Mapping[str, str], raw: bytes, route: str) -> None:
        assert refused.source_id is not None
        declared = headers.get("content-length")
        size = int(declared) if declared and declared.isdigit() else len(raw)
        request = {"route": route, "bytes": size, "content_type": headers.get("content-type"),
                   "content_encoding": headers.get("content-encoding")}
        batch = SourceBatch(refused.source_id, [], [(Rejection("bad_request", refused.message), {"request": request})])
        try:
            await asyncio.wrap_future(self.appender.submit(batch))
        except StorageUnavailable:  # the client gets its 400 all the same; /metrics still counts it
            return
        self.metrics.rejected.labels(refused.source_id, "bad_request").inc()

    def _suppressed(self, message: Accepted) -> bool:
        return self.suppressions is not None and self.suppressions.suppressed(message.body)

    async def _process(self, headers: Mapping[str, str], raw: bytes, kind: str | None) -> Response:
        # Any declared Content-Type is accepted: what matters is that the body is JSON. Segment's
        # libraries say application/json, browsers' beacons text/plain, and RudderStack's Node
        # library application/x-www-form-urlencoded for its gzipped JSON.
        header_source = self.sources.resolve(headers.get("authorization"), None)
        # Refusals are recorded for an enabled source only: a disabled one's traffic is not wanted.
        source_id = header_source.id if header_source is not None and header_source.enabled else None
        limit = self._limit(header_source, kind)
        declared = headers.get("content-length")
        if (declared and declared.isdigit() and int(declared) > limit * 4 + 1024) or len(raw) > limit * 4 + 1024:
            raise _Refused(_too_large_message(kind, limit), source_id)
        try:
            body_bytes = _decode_body(raw, headers.get("content-encoding"), limit)
        except BodyTooLarge:
            raise _Refused(_too_large_message(kind, limit), source_id) from None
        except ValueError as exc:
            raise _Refused(str(exc), source_id) from None
        try:
            body = orjson.loads(body_bytes) if body_bytes else None
        except orjson.JSONDecodeError as exc:
            raise _Refused(f"Invalid JSON: {exc}", source_id) from None
        if not isinstance(body, dict):
            raise _Refused("The body must be a JSON object", source_id)

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
        if source is not header_source and len(body_bytes) > self._limit(source, kind):
            raise _Refused(_too_large_message(kind, self._limit(source, kind)), source.id)
        message_limit = source.limits.message

        received_ms = int(time.time() * 1000)
        accepted: list[Accepted] = []
        rejected: list[tuple[Rejection, Any]] = []
        if kind is not None:
            result = normalise(body, received_at_ms=received_ms, default_type=kind)
            if isinstance(result, Rejection):
                rejected.append((result, body))
            elif self._suppressed(result):
                rejected.append((_suppression(result, None), None))
            else:
                accepted.append(result)
        else:
            items = body.get("batch")
            if not isinstance(items, list):
                raise _Refused("batch must be an array of messages", source.id)
            if len(items) > MAX_BATCH_ITEMS:
                raise _Refused(f"batch has {len(items)} items; at most {MAX_BATCH_ITEMS} are allowed per request",
                               source.id)
            if not items:
                rejected.append((Rejection("empty_batch", "batch is empty"), None))
            context, integrations, sent_at = body.get("context"), body.get("integrations"), body.get("sentAt")
            # Only a body over the message limit can hold an item over it: skip re-serialising otherwise.
            check_items = len(body_bytes) > message_limit
            for index, item in enumerate(items):
                if check_items and isinstance(item, dict) and len(orjson.dumps(item)) > message_limit:
                    rej = Rejection("event_too_large", f"message is over {_size(message_limit)}", index,
                                    item.get("messageId") if isinstance(item.get("messageId"), str) else None)
                    rejected.append((rej, {"messageId": rej.message_id, "type": item.get("type")}))
                    continue
                merged = merge_batch_defaults(item, context, integrations)
                result = normalise(merged, received_at_ms=received_ms, batch_sent_at=sent_at)
                if isinstance(result, Rejection):
                    result.index = index
                    rejected.append((result, item))
                elif self._suppressed(result):
                    rejected.append((_suppression(result, index), None))  # no body: it is the person's data
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
        answer: dict[str, Any] = {"success": not rejected}
        if kind is None:
            answer.update(accepted=outcome.inserted, duplicates=outcome.duplicates)
            item_errors = [r for r, _ in rejected if r.index is not None]
            if item_errors:
                total = len(item_errors) + len(accepted)
                others = "; the others were stored" if accepted else ""
                answer.update(code="multi_user_error",
                              message=f"{len(item_errors)} of {total} messages were refused{others}")
                answer["rejected"] = [{"index": r.index, "code": r.code, "message": r.message} for r in item_errors]
            elif rejected:
                answer.update(code=rejected[0][0].code, message=rejected[0][0].message, rejected=[])
        elif rejected:
            rej = rejected[0][0]
            answer = {"success": False, "code": rej.code, "message": rej.message}
        return _json(200, answer)


def _suppression(message: Accepted, index: int | None) -> Rejection:
    own_id = message.body.get("messageId") if not message.message_id.startswith("ts-") else None
    return Rejection(SUPPRESSED, SUPPRESSED_MESSAGE, index, own_id)


def _size(limit: int) -> str:
    return f"{limit // (1024 * 1024)} MB" if limit % (1024 * 1024) == 0 else f"{limit // 1024} KB"


def _too_large_message(kind: str | None, limit: int) -> str:
    what = "single call" if kind is not None else "batch"
    return f"Request body is over the {_size(limit)} limit for a {what}"


_ERROR = {"type": "object", "required": ["code", "message"],
          "properties": {"code": {"type": "string"}, "message": {"type": "string"}}}
#: The 200 answer. ``success`` is true exactly when nothing was refused; otherwise ``code`` says
#: why (``empty_batch``, ``multi_user_error`` when some items were refused, or the one message's
#: code) and ``rejected`` names each refused batch item. Accepted items are stored either way.
_ANSWER = {
    "type": "object", "required": ["success"],
    "properties": {
        "success": {"type": "boolean"},
        "accepted": {"type": "integer", "minimum": 0, "description": "batch: messages newly stored"},
        "duplicates": {"type": "integer", "minimum": 0,
                       "description": "batch: messages whose messageId was already stored"},
        "code": {"type": "string"}, "message": {"type": "string"},
        "rejected": {"type": "array", "items": {
            "type": "object", "required": ["index", "code", "message"],
            "properties": {"index": {"type": "integer"}, "code": {"type": "string"},
                           "message": {"type": "string"}}}},
    },
}


def _with(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {_JSON: {"schema": schema}}}


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: _with("Accepted; `success` is false, with a `code`, when a message or batch item was refused", _ANSWER),
    400: _with("`bad_request`: invalid JSON, a body that is not an object, or an oversize request", _ERROR),
    401: _with("`unknown_source`: missing or unknown write key", _ERROR),
    403: _with("`source_disabled`: the source is disabled", _ERROR),
    429: _with("`too_many_requests`: the source is over its rate limit; see Retry-After", _ERROR),
    503: _with("`storage_unavailable`: the event log cannot commit; nothing was stored; see Retry-After", _ERROR),
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
