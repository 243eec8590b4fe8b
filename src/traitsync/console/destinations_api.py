"""Destination pages: delivered / retried / dead per minute, and dead letters with replay.

The Delivery Overview funnel and the debugger already have endpoints (``activation.routes``);
these add the chart and the one thing a console user does rather than reads: send a dead
letter again, one or all, with its original ``messageId``.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, Field

from traitsync.activation.routes import DAY_MS, parse_time_ms
from traitsync.console.routes import ConsoleSources
from traitsync.delivery.dead_letters import dead_letters, replay_dead_letters
from traitsync.delivery.timeline import MINUTE_MS, per_minute

#: Most points a chart asks for; longer ranges get wider buckets (whole minutes).
MAX_BUCKETS = 360

#: Outbox ids are 64-bit row ids; a larger number cannot name a row and would overflow the driver.
OutboxId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class ReplayRequest(BaseModel):
    """Which dead letters to send again: the listed ones, or every one of the destination."""

    outbox_ids: list[OutboxId] | None = Field(None, description="Omit (or null) to replay every dead letter.")


def destinations_console_router(src: ConsoleSources, dependencies: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/destinations", tags=["Console"], dependencies=dependencies)
    known = {d.id for d in src.activation.destinations}

    def check(destination_id: str) -> None:
        if destination_id not in known:
            raise HTTPException(404, detail={"code": "not_found", "message": f"no destination {destination_id!r}"})

    @router.get("/{destination_id}/timeline", summary="Attempts per minute: delivered, retried and dead")
    def timeline(destination_id: str, since: str | None = None, until: str | None = None) -> dict[str, Any]:
        check(destination_id)
        until_ms = parse_time_ms(until, int(time.time() * 1000) + 1)
        since_ms = parse_time_ms(since, until_ms - DAY_MS // 24)
        if since_ms >= until_ms:
            raise HTTPException(400, detail={"code": "bad_range", "message": "since must be before until"})
        minutes = -(-(until_ms - since_ms) // MINUTE_MS)
        bucket = MINUTE_MS * max(1, -(-minutes // MAX_BUCKETS))
        points = per_minute(src.db, destination_id, since_ms=since_ms, until_ms=until_ms, bucket_ms=bucket)
        return {"destination_id": destination_id, "bucket_ms": bucket,
                "points": [p.__dict__ for p in points]}

    @router.get("/{destination_id}/dead-letters", summary="Dead letters, newest first; page with `before`")
    def list_dead(destination_id: str, before: int | None = Query(None, ge=1, le=2**63 - 1),
                  limit: int = Query(25, ge=1, le=200)) -> dict[str, Any]:
        check(destination_id)
        rows, total = dead_letters(src.db, destination_id, before_id=before, limit=limit + 1)
        page = rows[:limit]
        return {"destination_id": destination_id, "total": total,
                "dead_letters": [r.__dict__ for r in page],
                "next": page[-1].outbox_id if len(rows) > limit else None}

    @router.post("/{destination_id}/dead-letters/replay",
                 summary="Send dead letters again with their original messageIds")
    def replay(destination_id: str, body: ReplayRequest) -> dict[str, Any]:
        check(destination_id)
        n = replay_dead_letters(src.db, destination_id, body.outbox_ids)
        return {"destination_id": destination_id, "replayed": n}

    return router
