"""``/api/v1/regulations``: request a deletion or suppression, and list what was asked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from traitsync.privacy.regulations import BadSubject, list_regulations, parse_subject, request
from traitsync.store.database import Database


class RegulationRequest(BaseModel):
    regulation_type: Literal["delete", "suppress_with_delete", "suppress", "unsuppress"]
    subject: str = Field(min_length=3, max_length=1000, description="TYPE:VALUE, e.g. email:ada@example.com",
                         examples=["email:ada@example.com"])


class RegulationOut(BaseModel):
    id: int
    regulation_type: str
    subject_type: str
    subject: str | None = Field(description="The identifier; cleared once a deletion is done")
    requested_by: str
    requested_at_ms: int
    status: Literal["pending", "exiting", "done"]
    finished_at_ms: int | None
    detail: str | None


class RegulationList(BaseModel):
    regulations: list[RegulationOut]


def regulations_router(db: Database, *, dependencies: Sequence[Any] = ()) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["Privacy"], dependencies=list(dependencies))

    @router.post("/regulations", status_code=201, response_model=RegulationOut,
                 summary="Delete or suppress a person by one identifier (admin)")
    def create(body: RegulationRequest, http: Request) -> dict[str, Any]:
        try:
            id_type, value = parse_subject(body.subject)
        except BadSubject as exc:
            raise HTTPException(400, detail={"code": exc.code, "message": exc.message}) from None
        grant = getattr(http.state, "grant", None)
        who = f"token:{grant.name}" if grant is not None else "api"
        return request(db, body.regulation_type, id_type, value, who).as_dict()

    @router.get("/regulations", response_model=RegulationList, summary="Regulations, newest first")
    def index(limit: int = 100) -> dict[str, Any]:
        return {"regulations": [r.as_dict() for r in list_regulations(db, max(1, min(limit, 1000)))]}

    return router
