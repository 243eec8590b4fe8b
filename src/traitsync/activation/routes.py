"""``/api/v1/destinations``: destinations, Delivery Overview and the debugger (segment-spec 5.5).

The overview counts the messages that entered delivery in ``[since, until)`` by Segment's
stages: *Filtered at destination* (by discard reason), *Events pending retry*, *Failed
delivery* (by code) and *Successful delivery*, plus messages not yet attempted and how many
successes needed retries. ``since``/``until`` accept ISO-8601 or epoch milliseconds; the default
range is the last 24 hours (Segment's UI offers 10 minutes to 2 weeks).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from traitsync.activation.config import ActivationConfig, ActivationDestination
from traitsync.activation.list_status import list_statuses
from traitsync.activation.lists import ListScheduler
from traitsync.delivery.outbox import DEAD, DELIVERED, FILTERED, IN_FLIGHT, PENDING, RETRY_WAIT, Outbox, now_ms
from traitsync.delivery.overview import DebugEntry, delivery_overview, recent_messages
from traitsync.delivery.pauses import paused_until
from traitsync.delivery.target import DeliveryTarget
from traitsync.store.database import Database

DAY_MS = 86_400_000
STAGES = ("filtered_at_destination", "pending", "pending_retry", "failed_delivery", "successful_delivery")


def parse_time_ms(value: str | None, default: int) -> int:
    """ISO-8601 (``Z`` allowed) or epoch milliseconds; 400 on anything else."""
    if value is None or value == "":
        return default
    text = value.strip()
    if text.lstrip("-").isascii() and text.lstrip("-").isdigit():  # "³".isdigit() is true, int("³") fails
        return int(text)
    try:
        return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise HTTPException(400, detail={"code": "bad_time", "message": f"{value!r} is neither ISO-8601 nor "
                                         "epoch milliseconds"}) from None


def destination_summary(db: Database, dest: ActivationDestination, target: DeliveryTarget | None
                        ) -> dict[str, Any]:
    conn = db.connect()
    try:
        counts = Outbox(db).state_counts(conn, dest.id)
        until_ms, pause_code = paused_until(conn, dest.id)
        lists = [s.as_dict() for s in list_statuses(conn, dest.id)] if dest.mode == "list" else None
        conn.commit()
    finally:
        conn.close()
    paused = until_ms > now_ms()
    return {
        "id": dest.id, "name": dest.name, "kind": dest.resolved.config.kind, "mode": dest.mode,
        "rate_per_second": target.rate if target is not None else None,
        "concurrency": target.concurrency if target is not None else None,
        "batch_size": dest.batch_size,
        "schedule_seconds": dest.interval_s if dest.mode == "list" else None,
        "connections": [{"computation": c.computation.key, "computation_id": c.computation.id,
                         "computation_class": c.computation.kind,
                         "send": [k for k, on in (("identify", c.settings.send_identify),
                                                  ("track", c.settings.send_track),
                                                  ("group", c.settings.send_group)) if on]}
                        for c in dest.links],
        "states": dict(sorted(counts.items())),
        "paused": paused,
        "paused_until_ms": until_ms if paused else None,
        "pause_code": pause_code if paused else None,
        "min_audience_size": dest.min_audience_size if dest.mode == "list" else None,
        "lists": lists,
    }


def debug_entry(entry: DebugEntry) -> dict[str, Any]:
    return {"outbox_id": entry.outbox_id, "messageId": entry.message_id, "type": entry.message_type,
            "state": entry.state, "created_at_ms": entry.created_at_ms, "last_error_code": entry.last_error_code,
            "message": entry.message,
            "attempts": [{"attempt": a.attempt, "at_ms": a.at_ms, "duration_ms": a.duration_ms,
                          "http_status": a.http_status, "outcome": a.outcome, "code": a.code, "detail": a.detail,
                          "requests": list(a.requests)}
                         for a in entry.attempts]}


def overview_dict(db: Database, destination_id: str, since_ms: int, until_ms: int, *,
                  lists: bool = False) -> dict[str, Any]:
    """The overview's stages; with ``lists`` (a list destination) also where each audience's list
    stands, so a sync held below the vendor's minimum size shows here with its reason."""
    conn = db.connect()
    try:
        view = delivery_overview(conn, since_ms=since_ms, until_ms=until_ms, destination_id=destination_id)
        held = [s.as_dict() for s in list_statuses(conn, destination_id)] if lists else None
        conn.commit()
    finally:
        conn.close()
    body = view[destination_id].as_dict()
    out = {**body, "since_ms": since_ms, "until_ms": until_ms, "total": view[destination_id].total}
    if held is not None:
        out["lists"] = held
    return out


_INT = {"type": "integer"}
_NULLABLE_INT = {"type": ["integer", "null"]}
_COUNTS = {"type": "object", "additionalProperties": {"type": "integer"}}
_SUMMARY = {
    "type": "object", "required": ["id", "name", "kind", "mode", "connections", "states", "paused"],
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "kind": {"type": "string"},
        "mode": {"type": "string", "enum": ["event", "list"]}, "rate_per_second": {"type": ["number", "null"]},
        "concurrency": _NULLABLE_INT, "batch_size": _INT, "schedule_seconds": {"type": ["number", "null"]},
        "connections": {"type": "array", "items": {"type": "object", "properties": {
            "computation": {"type": "string"}, "computation_id": {"type": "string"},
            "computation_class": {"type": "string"}, "send": {"type": "array", "items": {"type": "string"}}}}},
        "states": _COUNTS, "paused": {"type": "boolean"}, "paused_until_ms": _NULLABLE_INT,
        "pause_code": {"type": ["string", "null"]}}}
_OVERVIEW = {
    "type": "object", "required": ["destination_id", *STAGES, "since_ms", "until_ms", "total"],
    "properties": {"destination_id": {"type": "string"}, "filtered_at_destination": _COUNTS, "pending": _INT,
                   "pending_retry": _INT, "failed_delivery": _COUNTS, "successful_delivery": _INT,
                   "retried_then_delivered": _INT, "since_ms": _INT, "until_ms": _INT, "total": _INT}}
_DEBUGGER = {
    "type": "object", "required": ["destination_id", "messages"],
    "properties": {"destination_id": {"type": "string"}, "messages": {"type": "array", "items": {
        "type": "object", "required": ["outbox_id", "messageId", "type", "state", "attempts"],
        "properties": {"outbox_id": _INT, "messageId": {"type": "string"}, "type": {"type": "string"},
                       "state": {"type": "string"}, "created_at_ms": _INT,
                       "last_error_code": {"type": ["string", "null"]}, "message": {},
                       "attempts": {"type": "array", "items": {"type": "object"}}}}}}}
_SYNC = {"type": "object", "required": ["destination_id", "syncs"],
         "properties": {"destination_id": {"type": "string"}, "syncs": {"type": "array", "items": {
             "type": "object", "properties": {"destination_id": {"type": "string"},
                                              "computation_key": {"type": "string"}, "created": {"type": "boolean"},
                                              "adds": _INT, "removes": _INT, "messages": _INT,
                                              "skipped": {"type": ["string", "null"]}}}}}}


def _ok(schema: dict[str, Any], **more: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {200: {"description": "OK",
                                                  "content": {"application/json": {"schema": schema}}}}
    out.update(more)
    return out


def destinations_router(db: Database, config: ActivationConfig, targets: Sequence[DeliveryTarget],
                        scheduler: ListScheduler | None = None, *, dependencies: Sequence[Any] = ()) -> APIRouter:
    """``dependencies`` carries the management auth: it must be given when the router is made,
    because FastAPI copies a router's dependencies into each route as the route is declared."""
    router = APIRouter(prefix="/api/v1", tags=["Destinations"], dependencies=list(dependencies))
    by_id = config.by_id()
    target_of = {t.destination_id: t for t in targets}

    def find(destination_id: str) -> ActivationDestination:
        dest = by_id.get(destination_id)
        if dest is None:
            raise HTTPException(404, detail={"code": "not_found", "message": f"no destination {destination_id!r}"})
        return dest

    @router.get("/destinations", summary="Destinations with their kind, rate and outbox state counts",
                response_model=None, responses=_ok({"type": "object", "required": ["destinations"], "properties": {
                    "destinations": {"type": "array", "items": _SUMMARY}}}))
    def list_destinations() -> dict[str, Any]:
        return {"destinations": [destination_summary(db, d, target_of.get(d.id)) for d in config.destinations]}

    @router.get("/destinations/{destination_id}/delivery-overview", summary="Delivery Overview stages",
                response_model=None, responses=_ok(_OVERVIEW))
    def overview(destination_id: str, since: str | None = None, until: str | None = None) -> dict[str, Any]:
        dest = find(destination_id)
        now = now_ms()
        until_ms = parse_time_ms(until, now + 1)
        since_ms = parse_time_ms(since, until_ms - DAY_MS)
        if since_ms >= until_ms:
            raise HTTPException(400, detail={"code": "bad_range", "message": "since must be before until"})
        return overview_dict(db, destination_id, since_ms, until_ms, lists=dest.mode == "list")

    @router.get("/destinations/{destination_id}/debugger", summary="Last messages with attempts and outcomes",
                response_model=None, responses=_ok(_DEBUGGER))
    def debugger(destination_id: str, limit: int = 50) -> dict[str, Any]:
        find(destination_id)
        conn = db.connect()
        try:
            entries = recent_messages(conn, destination_id, limit=max(1, min(limit, 500)))
        finally:
            conn.close()
        return {"destination_id": destination_id, "messages": [debug_entry(e) for e in entries]}

    @router.post("/destinations/{destination_id}/sync", summary="Sync a list destination now", response_model=None,
                 responses=_ok(_SYNC, **{"409": {"description": "`not_a_list_destination`: event destinations "
                                                 "sync by themselves"}}))
    def sync_now(destination_id: str) -> dict[str, Any]:
        dest = find(destination_id)
        if dest.mode != "list" or scheduler is None:
            raise HTTPException(409, detail={"code": "not_a_list_destination",
                                             "message": f"{destination_id!r} is an event destination"})
        results = scheduler.sync_now(destination_id)
        return {"destination_id": destination_id, "syncs": [r.__dict__ for r in results]}

    return router


_STATES = (PENDING, IN_FLIGHT, RETRY_WAIT, DELIVERED, DEAD, FILTERED)


class DeliveryCollector(Collector):
    """Prometheus: outbox rows per destination and state, read at scrape time (no hot-path cost)."""

    def __init__(self, db: Database, config: ActivationConfig) -> None:
        self.db = db
        self.config = config

    def collect(self) -> Any:
        family = GaugeMetricFamily("traitsync_delivery_messages", "Outbox messages by destination and state",
                                   labels=["destination", "state"])
        conn = self.db.connect()
        try:
            outbox = Outbox(self.db)
            for dest in self.config.destinations:
                # Every state is reported, zeros included, so dashboards and alerts see a series
                # from the start instead of "no data".
                counts = {state: 0 for state in _STATES}
                counts.update(outbox.state_counts(conn, dest.id))
                for state, count in sorted(counts.items()):
                    family.add_metric([dest.id, state], count)
            conn.commit()
        finally:
            conn.close()
        yield family
