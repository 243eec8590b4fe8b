"""The Profile API (segment-spec 6) as a FastAPI router.

Query parameters are parsed by hand rather than by FastAPI so that every error, including a
bad ``limit``, answers in Segment's shape ``{"error": {"code", "message"}}``; a custom route
class adds the ``Request-Id`` header to every answer, errors included.

The routes are on the hot path (issue 4: p99 < 10 ms at 2,000 requests/s over 1M profiles), so
the route class calls the endpoints directly instead of through FastAPI's dependency machinery
(they take only the request and string path parameters, so there is nothing for it to do), and
``/traits`` splices the stored JSON text of trait values into the answer instead of decoding
and re-encoding it. ``bench/profile_api.py`` measures it.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from types import MappingProxyType
from typing import Annotated, Any, cast

import orjson
from fastapi import APIRouter, Path, Request, Response
from fastapi.routing import APIRoute

from traitsync.profiles import openapi as doc
from traitsync.profiles.store import DeleteRefused, ExternalId, ProfileStore
from traitsync.spec.timestamps import parse_iso_ms
from traitsync.store.database import Database

#: Computed values hook: (collection, profile_id, class or None) -> {key: (value, updated_at_ms)}.
ComputedValues = Callable[[str, str, str | None], dict[str, tuple[Any, int | None]]]
COLLECTIONS = ("users", "accounts")
CLASSES = ("audience", "computed_trait")
NOT_FOUND = "Profile was not found."
_NO_PARAMS: Mapping[str, str] = MappingProxyType({})
#: Path parameters as documented; the handlers check them themselves (see ``_ProfileRoute``).
Space = Annotated[str, Path(pattern=doc.NAME_PATTERN)]
Collection = Annotated[str, Path(pattern=doc.NAME_PATTERN, description="users or accounts")]
Identifier = Annotated[str, Path(description="`<id_type>:<value>`")]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def _json(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, media_type="application/json", headers=headers)


class _ProfileRoute(APIRoute):
    """Turns ``ApiError`` into Segment's error body and stamps ``Request-Id`` on every answer.

    Every endpoint of this router is ``async def f(request, **string path parameters) ->
    Response``, so the handler calls it directly: FastAPI's request handler (dependency solving,
    parameter validation, response serialisation) would only re-check strings and cost about a
    fifth of the time of a ``/traits`` answer.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        endpoint = cast(Callable[..., Awaitable[Response]], self.endpoint)

        async def handler(request: Request) -> Response:
            request_id = str(uuid.uuid4())
            try:
                response = await endpoint(request, **request.path_params)
            except ApiError as err:
                response = _json(err.status, {"error": {"code": err.code, "message": err.message}}, err.headers)
            response.headers["Request-Id"] = request_id
            return response

        return handler


class _Bucket:
    """Token bucket for the per-space request rate (Segment: 100 requests/s)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.at = time.monotonic()
        self.lock = threading.Lock()

    def take(self) -> float:
        with self.lock:
            now = time.monotonic()
            self.tokens = min(self.rate, self.tokens + (now - self.at) * self.rate)
            self.at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return 0.0
            return (1 - self.tokens) / self.rate


def _params(request: Request) -> Mapping[str, str]:
    """The query parameters; most calls have none, and parsing an empty query still costs."""
    return request.query_params if request.scope["query_string"] else _NO_PARAMS


def _int(params: Any, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "invalid_request_error", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ApiError(400, "invalid_request_error", f"{name} must be between {low} and {high}")
    return value


def _bool(params: Any, name: str) -> bool:
    raw = params.get(name)
    if raw is None:
        return False
    if raw.lower() in ("true", "1", "yes"):
        return True
    if raw.lower() in ("false", "0", "no", ""):
        return False
    raise ApiError(400, "invalid_request_error", f"{name} must be true or false")


def _list(params: Any, name: str) -> list[str] | None:
    raw = params.get(name)
    if raw is None:
        return None
    return [part.strip() for part in raw.split(",") if part.strip()]


def _time(params: Any, name: str) -> int | None:
    raw = params.get(name)
    if raw is None:
        return None
    ms = parse_iso_ms(raw)
    if ms is None:
        raise ApiError(400, "invalid_request_error", f"{name} must be an ISO-8601 timestamp")
    return ms


def _iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    from traitsync.spec.timestamps import format_iso_ms

    return format_iso_ms(ms)


def _encode(prefix: str, data: Any) -> str:
    return prefix + base64.urlsafe_b64encode(orjson.dumps(data)).decode().rstrip("=")


def _decode(prefix: str, token: str | None) -> Any:
    if token is None:
        return None
    if not token.startswith(prefix):
        raise ApiError(400, "invalid_request_error", "next is not a cursor of this route")
    body = token[len(prefix):]
    try:
        return orjson.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, orjson.JSONDecodeError, ValueError):
        raise ApiError(400, "invalid_request_error", "next is not a valid cursor") from None


def _url_path(request: Request) -> str:
    """``request.url.path`` without building the URL (a sixth of a ``/traits`` answer's own time).

    Starlette escapes ``?``, ``#`` and ``\\`` and ``urlsplit`` drops tabs and newlines; paths
    holding any of them take the slow, exact way.
    """
    path: str = request.scope["path"]
    if any(c in path for c in "?#\\\t\r\n"):
        return request.url.path
    return path


def _cursor(request: Request, has_more: bool, next_token: str, limit: int) -> dict[str, Any]:
    return {"url": _url_path(request), "has_more": has_more, "next": next_token if has_more else "",
            "limit": limit}


def _external_id(e: ExternalId) -> dict[str, Any]:
    return {"source_id": e.source_id, "collection": e.collection, "id": e.value, "type": e.id_type,
            "created_at": _iso(e.created_at_ms), "encoding": "none", "first_message_id": e.first_message_id}


def profile_api_router(db: Database, space_id: str, access_secret: str | Sequence[str], *,
                       computed_values: ComputedValues | None = None,
                       rate_limit_per_second: float | None = None) -> APIRouter:
    """Routes under ``/v1/spaces/{space_id}/collections/...``.

    ``computed_values`` supplies audience and computed-trait values (class=audience|computed_trait)
    once the compute stage exists; without it only custom traits are served. The rate limit is
    off unless given (Segment's is 100 requests/s per space).
    """
    store = ProfileStore(db)
    bucket = _Bucket(rate_limit_per_second) if rate_limit_per_second else None
    router = APIRouter(route_class=_ProfileRoute)
    secrets = [access_secret] if isinstance(access_secret, str) else list(access_secret)
    expected = [f"{secret}:".encode() for secret in secrets]
    # What every well-behaved client sends; compared in constant time before any parsing.
    canonical = [b"Basic " + base64.b64encode(e) for e in expected]

    def authorise(request: Request) -> None:
        raw = next((v for k, v in request.scope["headers"] if k == b"authorization"), b"")
        ok = any(hmac.compare_digest(raw, c) for c in canonical)
        header = "" if ok else raw.decode("latin-1")
        scheme, _, value = header.partition(" ")
        if not ok and scheme.lower() == "basic" and value:
            try:
                decoded = base64.b64decode(value.strip(), validate=True)
            except (binascii.Error, ValueError):
                decoded = b""
            user = decoded.split(b":", 1)[0] + b":"
            ok = any(hmac.compare_digest(user, e) for e in expected)
        if not ok:
            raise ApiError(401, "authentication_error", "Send the access secret as the Basic auth user name.",
                           {"WWW-Authenticate": 'Basic realm="profiles"'})
        if bucket is not None:
            wait = bucket.take()
            if wait > 0:
                raise ApiError(429, "rate_limit_error", "Too many requests; back off and retry.",
                               {"Retry-After": str(max(1, round(wait)))})

    def check(request: Request, space: str, collection: str, identifier: str) -> tuple[str, str]:
        """Everything ``locate`` checks before looking the profile up: (id_type, value)."""
        authorise(request)
        if collection not in COLLECTIONS:
            raise ApiError(400, "validation_error", "collection must be users or accounts")
        if space != space_id:
            raise ApiError(404, "not_found", "Space was not found.")
        id_type, sep, value = identifier.partition(":")
        if not sep or not id_type or not value:
            raise ApiError(400, "invalid_request_error", "the profile is named as <id_type>:<value>")
        return id_type, value

    def locate(request: Request, space: str, collection: str, identifier: str) -> tuple[str, str, str]:
        id_type, value = check(request, space, collection, identifier)
        pid = store.find(collection, id_type, value)
        if pid is None:
            raise ApiError(404, "not_found", NOT_FOUND)
        return pid, id_type, value

    base = "/v1/spaces/{space}/collections/{collection}/profiles/{identifier:path}"

    @router.get(base + "/traits", openapi_extra=doc.TRAITS)
    async def traits(request: Request, space: Space, collection: Collection, identifier: Identifier) -> Response:
        q = _params(request)
        klass = q.get("class")
        # Stored values are JSON text written by orjson: spliced in as is, never decoded.
        values: dict[str, tuple[Any, str | None, int | None]] = {}
        if klass is None:
            found = store.find_with_traits(collection, *check(request, space, collection, identifier))
            if found is None:
                raise ApiError(404, "not_found", NOT_FOUND)
            pid = found[0]
            for key, text, source, updated in found[1]:
                values[key] = (orjson.Fragment(text), source, updated)
        else:
            pid, _, _ = locate(request, space, collection, identifier)
        limit = _int(q, "limit", 10, 1, 200)
        verbose = _bool(q, "verbose")
        include = _list(q, "include")
        if klass is not None and klass not in CLASSES:
            raise ApiError(400, "invalid_request_error", "class must be audience or computed_trait")
        after = q.get("next")
        if computed_values is not None:
            for key, (value, at) in computed_values(collection, pid, klass).items():
                values[key] = (value, None, at)
        keys = sorted(k for k in values if (include is None or k in include) and (after is None or k > after))
        page = keys[:limit]
        body: dict[str, Any] = {}
        for k in page:
            value, source, at = values[k]
            body[k] = {"value": value, "source_id": source, "updated_at": _iso(at)} if verbose else value
        has_more = len(keys) > limit
        return _json(200, {"traits": body, "cursor": _cursor(request, has_more, page[-1] if page else "", limit)})

    @router.get(base + "/external_ids", openapi_extra=doc.EXTERNAL_IDS)
    async def external_ids(request: Request, space: Space, collection: Collection, identifier: Identifier) -> Response:
        pid, _, _ = locate(request, space, collection, identifier)
        q = _params(request)
        limit = _int(q, "limit", 25, 1, 100)
        _bool(q, "verbose")
        start = _decode("map_", q.get("next")) or 0
        if not isinstance(start, int) or start < 0:
            raise ApiError(400, "invalid_request_error", "next is not a valid cursor")
        rows = store.external_ids(pid, _list(q, "include"))
        page = rows[start:start + limit]
        has_more = len(rows) > start + limit
        return _json(200, {"data": [_external_id(e) for e in page],
                           "cursor": _cursor(request, has_more, _encode("map_", start + limit), limit)})

    @router.get(base + "/events", openapi_extra=doc.EVENTS)
    async def events(request: Request, space: Space, collection: Collection, identifier: Identifier) -> Response:
        pid, _, _ = locate(request, space, collection, identifier)
        q = _params(request)
        limit = _int(q, "limit", 10, 1, 100)
        sort = q.get("sort", "desc")
        if sort not in ("asc", "desc"):
            raise ApiError(400, "invalid_request_error", "sort must be asc or desc")
        after = _decode("evt_", q.get("next"))
        if after is not None and (not isinstance(after, list) or len(after) != 2
                                  or not all(isinstance(x, int) for x in after)):
            raise ApiError(400, "invalid_request_error", "next is not a valid cursor")
        rows = store.events(store.members(pid), collection, start_ms=_time(q, "start"), end_ms=_time(q, "end"),
                            include=_list(q, "include"), exclude=_list(q, "exclude"),
                            descending=sort == "desc", after=tuple(after) if after else None,  # type: ignore[arg-type]
                            limit=limit + 1)
        page = rows[:limit]
        data = []
        for ev in page:
            b = ev.body
            item: dict[str, Any] = {
                "external_ids": [{"collection": c, "type": t, "id": v, "encoding": "none"}
                                 for c, t, v in ev.external_ids],
                "context": b.get("context", {}), "type": b.get("type"), "message_id": b.get("messageId"),
                "source_id": ev.source_id, "timestamp": b.get("timestamp"),
                "properties": b.get("properties", {}), "event": b.get("event"),
                "related": {collection: pid},
            }
            if b.get("traits") is not None:
                item["traits"] = b["traits"]
            data.append(item)
        has_more = len(rows) > limit
        token = _encode("evt_", [page[-1].timestamp_ms, page[-1].offset]) if page else ""
        return _json(200, {"data": data, "cursor": _cursor(request, has_more, token, limit)})

    @router.get(base + "/links", openapi_extra=doc.LINKS)
    async def links(request: Request, space: Space, collection: Collection, identifier: Identifier) -> Response:
        pid, _, _ = locate(request, space, collection, identifier)
        limit = _int(_params(request), "limit", 20, 1, 100)
        found = store.linked(pid, collection, limit + 1)
        other = "accounts" if collection == "users" else "users"
        data = [{"to_collection": other, "external_ids": [
            {k: v for k, v in _external_id(e).items() if k != "first_message_id"} for e in ids]}
            for _, ids in found[:limit]]
        return _json(200, {"data": data, "cursor": _cursor(request, len(found) > limit, "", limit)})

    @router.get(base + "/metadata", openapi_extra=doc.METADATA)
    async def metadata(request: Request, space: Space, collection: Collection, identifier: Identifier) -> Response:
        pid, _, _ = locate(request, space, collection, identifier)
        _bool(_params(request), "verbose")
        meta = store.metadata(pid)
        if meta is None:
            raise ApiError(404, "not_found", NOT_FOUND)
        return _json(200, {"metadata": {
            "created_at": _iso(meta["created_at_ms"]), "updated_at": _iso(meta["updated_at_ms"]),
            "expires_at": None, "first_message_id": meta["first_message_id"],
            "first_source_id": meta["first_source_id"], "last_message_id": meta["last_message_id"],
            "last_source_id": meta["last_source_id"]}})

    @router.post(base + "/external_ids/delete", openapi_extra=doc.DELETE_EXTERNAL_ID)
    async def delete_external_ids(request: Request, space: Space, collection: Collection,
                                  identifier: Identifier) -> Response:
        authorise(request)
        if collection != "users":
            raise ApiError(400, "bad_request", "Identifiers can only be deleted from the users collection.")
        if space != space_id:
            raise ApiError(404, "not_found", "Space was not found.")
        id_type, sep, lookup = identifier.partition(":")
        if id_type != "user_id" or not sep or not lookup:
            raise ApiError(400, "bad_request", "Look the profile up by user_id:<value>.")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise ApiError(400, "bad_request", "The body must be JSON.") from None
        items = body.get("delete_external_ids") if isinstance(body, dict) else None
        if not isinstance(items, list) or len(items) != 1:
            raise ApiError(400, "bad_request", "delete_external_ids must hold exactly 1 identifier.")
        item = items[0]
        if not isinstance(item, dict) or not isinstance(item.get("id"), str) or not isinstance(item.get("type"), str) \
                or not item["id"] or not item["type"]:
            raise ApiError(400, "bad_request", "Each identifier needs a string id and type.")
        try:
            store.delete_external_id(lookup, item["type"], item["id"])
        except DeleteRefused as refused:
            raise ApiError(refused.status, refused.code, refused.message) from None
        return _json(200, {"status": "success"})

    return router
