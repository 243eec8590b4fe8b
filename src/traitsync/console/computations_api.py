"""Computation pages: size history, a page of members, identifier breakdown, definition text.

The list and summary (``GET /api/v1/computations``) stay with the engine's own router; these
add what a person needs to trust a number: how it moved, who is in it, which identifiers a
destination can match them on, and where it is sent.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, HTTPException, Query

from traitsync.activation.routes import DAY_MS, parse_time_ms
from traitsync.compute.realtime import computation_summaries
from traitsync.compute.realtime.history import SizeHistory, identifier_breakdown, members_page
from traitsync.console.definition_text import query_text, yaml_entry
from traitsync.console.routes import ConsoleSources
from traitsync.definitions import Definition, ir
from traitsync.profiles.lookup import identifiers_of

#: The breakdown joins every member with its identifiers (seconds at a million members): it is
#: counted again only when older than this.
BREAKDOWN_TTL_MS = 300_000


def _now_ms() -> int:
    return int(time.time() * 1000)


def _first(ids: dict[str, dict[str, list[str]]], profile_id: str, id_type: str) -> str | None:
    values = ids.get(profile_id, {}).get(id_type)
    return values[0] if values else None


def computations_console_router(src: ConsoleSources, dependencies: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["Console"], dependencies=dependencies)
    db, definitions = src.db, src.definitions
    history = SizeHistory(db)
    breakdowns: dict[str, tuple[int, dict[str, int]]] = {}

    def find(key: str) -> Definition:
        if key not in definitions:
            raise HTTPException(404, detail={"code": "not_found", "message": f"no computation {key!r}"})
        return definitions[key]

    def summary(key: str) -> dict[str, Any]:
        return next(s for s in computation_summaries(db, definitions) if s["key"] == key)

    @router.get("/computations/{key}/definition", summary="A computation as written (YAML), its Query Language "
                "text, and the destinations it is connected to")
    def definition(key: str) -> dict[str, Any]:
        defn = find(key)
        query, why_not = query_text(src.document, defn)
        connected = [{"destination_id": d.id, "name": d.name, "kind": d.resolved.config.kind, "mode": d.mode,
                      "send": [k for k, on in (("identify", link.settings.send_identify),
                                               ("track", link.settings.send_track)) if on]}
                     for d in src.activation.destinations for link in d.links if link.computation.key == key]
        return {"key": key, "class": defn.computation_class, "yaml": yaml_entry(src.document, defn),
                "query": query, "query_unavailable": why_not, "destinations": connected}

    @router.get("/computations/{key}/size-history",
                summary="Size over time: one point per bucket, each the size at the bucket's end")
    def size_history(key: str, since: str | None = None, until: str | None = None,
                     buckets: int = Query(60, ge=1, le=500)) -> dict[str, Any]:
        until_ms = parse_time_ms(until, _now_ms())
        since_ms = parse_time_ms(since, until_ms - DAY_MS)
        if since_ms >= until_ms:
            raise HTTPException(400, detail={"code": "bad_range", "message": "since must be before until"})
        find(key)
        points = history.series(key, current_size=summary(key)["size"], since_ms=since_ms, until_ms=until_ms,
                                buckets=buckets)
        return {"key": key, "since_ms": since_ms, "until_ms": until_ms,
                "points": [{"at_ms": p.at_ms, "size": p.size} for p in points]}

    @router.get("/computations/{key}/members", summary="Members (audience) or profiles with a value (trait), "
                "by profile id, with their user_id and email; page with `after`")
    def members(key: str, after: str | None = None, limit: int = Query(25, ge=1, le=200)) -> dict[str, Any]:
        defn = find(key)
        rows = members_page(db, key, is_audience=isinstance(defn, ir.Audience), size=summary(key)["size"],
                            after=after, limit=limit + 1)
        page = rows[:limit]
        ids = identifiers_of(db, [pid for pid, _, _ in page])
        return {"key": key, "members": [
            {"profile_id": pid, "value": value, "updated_at_ms": at,
             "user_id": _first(ids, pid, "user_id"), "email": _first(ids, pid, "email")}
            for pid, value, at in page],
            "next": page[-1][0] if len(rows) > limit else None}

    @router.get("/computations/{key}/identifiers", summary="How many members hold each identifier type "
                "(counted at most every 5 minutes: it reads every member)")
    def identifiers(key: str) -> dict[str, Any]:
        defn = find(key)
        at, counts = breakdowns.get(key, (0, {}))
        if _now_ms() - at > BREAKDOWN_TTL_MS:
            at, counts = _now_ms(), identifier_breakdown(db, key, is_audience=isinstance(defn, ir.Audience))
            breakdowns[key] = (at, counts)
        return {"key": key, "size": summary(key)["size"], "counted_at_ms": at, "identifiers": counts}

    return router
