"""``/api/v1/computations``: each definition with its status, size and last change (management API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from traitsync.compute.realtime.results import computation_summaries, preview
from traitsync.definitions import Definitions
from traitsync.store.database import Database

_NULLABLE_INT = {"type": ["integer", "null"]}
_SUMMARY: dict[str, Any] = {
    "type": "object", "required": ["key", "id", "class", "status", "size"],
    "properties": {"key": {"type": "string"}, "id": {"type": "string"}, "name": {"type": ["string", "null"]},
                   "class": {"type": "string", "description": "audience or trait"},
                   "status": {"type": "string", "description": "Pending, Backfilling, Computing, Live or Failed"},
                   "size": {"type": "integer"}, "last_change_at_ms": _NULLABLE_INT, "created_at_ms": _NULLABLE_INT,
                   "error": {"type": ["string", "null"]}}}
_LIST = {"type": "object", "required": ["computations"],
         "properties": {"computations": {"type": "array", "items": _SUMMARY}}}
_PREVIEW = {"allOf": [_SUMMARY, {"type": "object", "required": ["sample"], "properties": {"sample": {
    "type": "array", "items": {"type": "object", "required": ["profile_id", "value"],
                               "properties": {"profile_id": {"type": "string"}, "value": {}}}}}}]}


def _ok(schema: dict[str, Any]) -> dict[int | str, dict[str, Any]]:
    return {200: {"description": "OK", "content": {"application/json": {"schema": schema}}}}


def computations_router(db: Database, definitions: Definitions) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["computations"])

    @router.get("/computations", response_model=None, responses=_ok(_LIST),
                summary="Every computed trait and audience with its status and size")
    def list_computations() -> dict[str, Any]:
        return {"computations": computation_summaries(db, definitions)}

    @router.get("/computations/{key}", response_model=None, responses=_ok(_PREVIEW),
                summary="One computation with a sample of members (audience) or values (trait)")
    def get_computation(key: str, sample: int = 10) -> dict[str, Any]:
        if key not in definitions:
            raise HTTPException(status_code=404, detail=f"no computation {key!r}")
        return preview(db, definitions, key, max(0, min(sample, 100)))

    return router
