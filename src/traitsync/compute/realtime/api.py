"""``/api/v1/computations``: each definition with its status, size and last change (management API)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from traitsync.compute.realtime.results import computation_summaries, preview
from traitsync.definitions import Definitions
from traitsync.store.database import Database


def computations_router(db: Database, definitions: Definitions) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["computations"])

    @router.get("/computations")
    def list_computations() -> dict[str, Any]:
        return {"computations": computation_summaries(db, definitions)}

    @router.get("/computations/{key}")
    def get_computation(key: str, sample: int = 10) -> dict[str, Any]:
        if key not in definitions:
            raise HTTPException(status_code=404, detail=f"no computation {key!r}")
        return preview(db, definitions, key, max(0, min(sample, 100)))

    return router
