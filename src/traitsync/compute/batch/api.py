"""``GET /api/v1/computations/{key}/preview`` (management API): the preview as JSON or CSV."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import PlainTextResponse

from traitsync.compute.batch.preview import build_preview, members_csv, public
from traitsync.definitions import Definitions
from traitsync.errors import TraitsyncError
from traitsync.spec.timestamps import parse_iso_ms
from traitsync.store.database import Database


def preview_router(db: Database, definitions: Definitions) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["computations"])

    @router.get("/computations/{key}/preview", summary="Size, sample members, identifier mix and overlap",
                responses={200: {"content": {"text/csv": {}}}})
    def preview_computation(
        key: str,
        as_of: str | None = Query(None, description="A past ISO-8601 moment (default: the live values)."),
        overlap: str | None = Query(None, description="Another computation key to count shared members with."),
        sample: int = Query(10, ge=0, le=100),
        format: Literal["json", "csv"] = Query("json", description="csv: one row per member."),
    ) -> Any:
        for name in (key, overlap):
            if name is not None and name not in definitions:
                raise HTTPException(404, detail={"code": "not_found", "message": f"no computation {name!r}"})
        as_of_ms = None
        if as_of is not None:
            as_of_ms = parse_iso_ms(as_of)
            if as_of_ms is None:
                raise HTTPException(400, detail={"code": "bad_request",
                                                 "message": f"as_of {as_of!r} is not an ISO-8601 time"})
        try:
            result = build_preview(db, definitions, key, as_of_ms=as_of_ms, overlap=overlap, sample=sample)
        except TraitsyncError as exc:
            raise HTTPException(422, detail={"code": exc.code, "message": exc.message}) from None
        if format == "csv":
            return PlainTextResponse(members_csv(result), media_type="text/csv")
        return public(result)

    return router
