"""Compose the ASGI app: Tracking API, Profile API, management API, health and metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

import traitsync
from traitsync.identity import load_identity_config
from traitsync.identity.extract import identifier_reader
from traitsync.ingest import SourceDirectory, TrackingApi
from traitsync.ingest.fast_path import TrackingFastPath
from traitsync.ingest.metrics import IngestMetrics
from traitsync.ingest.suppressions import Suppressions
from traitsync.server.auth import ManagementAuth
from traitsync.server.openapi import (
    HEALTH_RESPONSES,
    METRICS_RESPONSES,
    METRICS_SECURITY,
    SOURCE_DEBUGGER_RESPONSES,
    SOURCES_RESPONSES,
    family,
)
from traitsync.server.openapi import install as install_openapi
from traitsync.server.runtime import Runtime
from traitsync.server.tokens import TokenDirectory

_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
          409: "conflict"}

#: Hooks other stages use to add routes without the server importing them at module level.
RouterFactory = Callable[[Runtime], APIRouter | None]


def create_app(runtime: Runtime, *, extra_routers: list[RouterFactory] | None = None,
               manage_lifecycle: bool = True) -> FastAPI:
    config = runtime.loaded.config

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if manage_lifecycle:
            runtime.start()
        try:
            yield
        finally:
            suppressions.stop()
            if manage_lifecycle:
                runtime.stop()

    app = FastAPI(
        title="traitsync",
        version=traitsync.__version__,
        description="Segment-compatible Tracking and Profile APIs, and the traitsync management API.",
        lifespan=lifespan,
    )
    install_openapi(app)
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    app.state.runtime = runtime
    app.state.registry = registry

    sources = SourceDirectory(list(config.sources))
    # Identity's own extraction: a suppressed identifier of any type the identity config knows
    # (custom ids, device ids) stops the message, read exactly as identity would read it.
    suppressions = Suppressions(runtime.db, readers=[identifier_reader(load_identity_config(runtime.loaded.document))])
    tracking = TrackingApi(sources, runtime.appender, metrics, suppressions=suppressions)
    if runtime.runs_api:
        suppressions.start()
        app.include_router(tracking.router())  # declared for OpenAPI; served by the fast path below
        app.add_middleware(TrackingFastPath, tracking=tracking)

    auth = ManagementAuth(TokenDirectory(config.management_api, runtime.db))
    manage = APIRouter(prefix="/api/v1", tags=["Management API"], dependencies=[Depends(auth)])

    @manage.get("/sources", summary="List sources (write keys are never shown)", response_model=None,
                responses=SOURCES_RESPONSES)
    def list_sources() -> list[dict[str, Any]]:
        return [{"id": s.id, "name": s.name, "enabled": s.enabled,
                 "rate_limit": s.rate_limit.model_dump() if s.rate_limit else None} for s in config.sources]

    @manage.get("/sources/{source_id}/debugger", summary="The last events and rejections of a source",
                response_model=None, responses=SOURCE_DEBUGGER_RESPONSES)
    def source_debugger(source_id: str, limit: int = 50) -> dict[str, Any]:
        if source_id not in sources.by_id:
            raise HTTPException(404, detail={"code": "not_found", "message": f"no source {source_id!r}"})
        limit = max(1, min(limit, 500))
        events = runtime.event_log.recent_for_source(source_id, limit)
        return {
            "source_id": source_id,
            "events": [{"offset": e.offset, "messageId": e.message_id, "type": e.type, "event": e.event,
                        "receivedAt": e.body.get("receivedAt"), "body": e.body} for e in events],
            "rejections": runtime.event_log.recent_rejections(source_id, limit),
        }

    management_auth = [Depends(auth)]
    for factory in extra_routers or []:
        router = factory(runtime)
        if router is None:
            continue
        # Dependencies must be given to include_router: FastAPI has already copied a router's own
        # dependency list into its routes, so appending to it afterwards would protect nothing.
        if router.prefix.startswith("/api/") or any(
                getattr(route, "path", "").startswith("/api/") for route in router.routes):
            app.include_router(router, dependencies=management_auth)
        else:
            app.include_router(router)
    app.include_router(manage)
    for collector in getattr(runtime, "metric_collectors", []):
        registry.register(collector)

    @app.get("/healthz", tags=["Operations"], summary="Liveness and storage health", responses=HEALTH_RESPONSES)
    async def healthz() -> JSONResponse:  # async: no thread-pool hop for the most frequent probe
        ok = runtime.appender.healthy
        body = {"status": "ok" if ok else "degraded", "version": traitsync.__version__,
                "storage": "ok" if ok else runtime.appender.last_error}
        return JSONResponse(body, status_code=200 if ok else 503)

    public_metrics = config.management_api is not None and config.management_api.public_metrics

    @app.get("/metrics", tags=["Operations"], summary="Prometheus metrics (a management token, any role)",
             response_class=Response, responses=METRICS_RESPONSES,
             dependencies=[] if public_metrics else [Depends(auth)],
             openapi_extra=None if public_metrics else METRICS_SECURITY)
    def prometheus_metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Every error, the router's own 404 and 405 included, answers ``{"code", "message"}``;
        under the Profile API's prefix it takes that API's shape, ``{"error": {"code", "message"}}``."""
        detail: dict[str, Any] = exc.detail if isinstance(exc.detail, dict) else {
            "code": _CODES.get(exc.status_code, "error"), "message": str(exc.detail)}
        if family(request.url.path) == "profile":
            detail = {"error": detail}
        return JSONResponse(detail, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        """A bad parameter is the caller's mistake: one line, 400, in the shape of every other error."""
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path", "body"))
        message = f"{where}: {first.get('msg', 'invalid value')}" if where else str(first.get("msg", "invalid"))
        return JSONResponse({"code": "invalid_request", "message": message}, status_code=400)

    return app
