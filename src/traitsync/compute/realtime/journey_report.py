"""What a journey looks like now: users in each step, and how many moved along each edge.

Read from the engine's output only: a step's size is its audience size (``computations.size``,
kept by the engine) and a move from step A to step B is a user who joined B after joining A,
counted from the ``computation_results`` rows where either became true. Each user counts once
per edge, however often they re-entered. The results are read in one pass over the journey's
rows (that table is indexed by offset only), which is fine for an operator's command; a
dashboard polling this often would want a per-step counter instead.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException

from traitsync.definitions import Definitions
from traitsync.store.database import Database


def journey_report(db: Database, definitions: Definitions, key: str) -> dict[str, Any]:
    """Steps (config order, entry first) with their size now and users who ever joined; edges with moves."""
    journey = definitions.journeys.get(key)
    if journey is None:
        raise KeyError(key)
    keys = [s.computation_key for s in journey.steps]
    marks = ",".join("?" * len(keys))
    conn = db.thread_connection()
    try:
        status = {str(r[0]): (str(r[1]), int(r[2])) for r in conn.fetchall(
            f"SELECT key, status, size FROM computations WHERE key IN ({marks})", keys)}
        joined: dict[str, set[str]] = {k: set() for k in keys}
        for comp, pid in conn.fetchall(
                f"SELECT computation_key, profile_id FROM computation_results WHERE computation_key IN ({marks}) "
                "AND new_value = 'true'", keys):
            joined[str(comp)].add(str(pid))
    finally:
        conn.commit()
    by_key = {s.key: s for s in journey.steps}
    steps = [{"key": s.key, "computation_key": s.computation_key, "kind": s.kind, "name": s.name,
              "after": list(s.parents), "wait_seconds": s.wait_seconds, "split": s.split,
              "status": status.get(s.computation_key, ("Pending", 0))[0],
              "users": status.get(s.computation_key, ("Pending", 0))[1],
              "ever_joined": len(joined[s.computation_key])} for s in journey.steps]
    moves = [{"from": p, "to": s.key,
              "users": len(joined[s.computation_key] & joined[by_key[p].computation_key])}
             for s in journey.steps for p in s.parents]
    return {"key": journey.key, "name": journey.name,
            "exit_after_seconds": journey.exit_after_seconds,
            "reenter_after_seconds": journey.reenter_after_seconds, "steps": steps, "moves": moves}


def journeys_router(db: Database, definitions: Definitions) -> APIRouter:
    """``/api/v1/journeys``: each journey's steps, sizes and moves (management API)."""
    router = APIRouter(prefix="/api/v1", tags=["journeys"])

    @router.get("/journeys", summary="Every journey with its steps' current sizes")
    def list_journeys() -> dict[str, Any]:
        return {"journeys": [journey_report(db, definitions, k) for k in definitions.journeys]}

    @router.get("/journeys/{key}", summary="One journey: users in each step now and moves between steps")
    def get_journey(key: str) -> dict[str, Any]:
        if key not in definitions.journeys:
            raise HTTPException(status_code=404, detail={"code": "not_found", "message": f"no journey {key!r}"})
        return journey_report(db, definitions, key)

    return router
