"""Profile pages: search by any identifier, and one profile with everything known about it.

The Profile API answers programs one question per call, keyed by an identifier; a person
looking someone up wants it all on one page, keyed by the profile, plus the identity explain
tree that says why these identifiers are one person.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query

from traitsync.compute.realtime.results import current_values_with_time
from traitsync.console.identity_api import tree_nodes
from traitsync.console.routes import ConsoleSources
from traitsync.identity.explain import canonical_of, explain
from traitsync.profiles import ProfileEvent, ProfileStore
from traitsync.profiles.lookup import search

EVENTS_PAGE = 20


def _event(ev: ProfileEvent) -> dict[str, Any]:
    b = ev.body
    return {"offset": ev.offset, "timestamp_ms": ev.timestamp_ms, "type": b.get("type"), "event": b.get("event"),
            "message_id": b.get("messageId"), "source_id": ev.source_id,
            "properties": b.get("properties") or {}, "traits": b.get("traits")}


def profiles_console_router(src: ConsoleSources, dependencies: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/profiles", tags=["Console"], dependencies=dependencies)
    db = src.db
    store = ProfileStore(db)

    def canonical(profile_id: str) -> str:
        conn = db.connect()
        try:
            if conn.scalar("SELECT 1 FROM profiles WHERE profile_id = ?", (profile_id,)) is None:
                raise HTTPException(404, detail={"code": "not_found", "message": f"no profile {profile_id!r}"})
            return canonical_of(conn, profile_id)
        finally:
            conn.commit()
            conn.close()

    def events_page(pid: str, collection: str, before: str | None, limit: int) -> dict[str, Any]:
        after: tuple[int, int] | None = None
        if before:
            ts, _, offset = before.partition(".")
            if not ts.lstrip("-").isdigit() or not offset.isdigit():
                raise HTTPException(400, detail={"code": "bad_cursor", "message": "before is not a cursor"})
            after = (int(ts), int(offset))
        rows = store.events(store.members(pid), collection, start_ms=None, end_ms=None, include=None,
                            exclude=None, descending=True, after=after, limit=limit + 1)
        page = rows[:limit]
        return {"events": [_event(e) for e in page],
                "next": f"{page[-1].timestamp_ms}.{page[-1].offset}" if len(rows) > limit else None}

    @router.get("", summary="Find profiles by an identifier: exact value or prefix; `type:value` narrows "
                "to one id type")
    def find(q: str = Query(..., min_length=1), limit: int = Query(20, ge=1, le=100)) -> dict[str, Any]:
        return {"query": q, "profiles": [m.__dict__ for m in search(db, q, src.id_types, limit=limit)]}

    @router.get("/{profile_id}", summary="One profile: identifiers, traits, computed values, account links, "
                "recent events and the identity explain tree")
    def profile(profile_id: str) -> dict[str, Any]:
        pid = canonical(profile_id)
        identifiers = store.external_ids(pid)
        collection = identifiers[0].collection if identifiers else "users"
        computed = []
        for key, (value, at) in sorted(current_values_with_time(db, pid).items()):
            defn = src.definitions.get(key)
            computed.append({"key": key, "class": defn.computation_class if defn else None,
                             "value": value, "updated_at_ms": at})
        tree = None
        if identifiers:
            first = identifiers[0]
            tree = tree_nodes(explain(db, first.id_type, first.value, collection).tree)
        return {
            "profile_id": pid, "requested": profile_id, "collection": collection,
            "metadata": store.metadata(pid),
            "identifiers": [{"type": e.id_type, "value": e.value, "source_id": e.source_id,
                             "created_at_ms": e.created_at_ms, "first_message_id": e.first_message_id}
                            for e in identifiers],
            "traits": [{"key": t.key, "value": t.value, "source_id": t.source_id, "updated_at_ms": t.updated_at_ms}
                       for t in store.traits(pid)],
            "computed": computed,
            "links": [{"profile_id": other, "identifiers": [{"type": e.id_type, "value": e.value} for e in ids]}
                      for other, ids in store.linked(pid, collection, 20)],
            "recent_events": events_page(pid, collection, None, EVENTS_PAGE),
            "explain": tree,
        }

    @router.get("/{profile_id}/events", summary="A profile's events, newest first; page with `before`")
    def events(profile_id: str, before: str | None = None, limit: int = Query(EVENTS_PAGE, ge=1, le=100)
               ) -> dict[str, Any]:
        pid = canonical(profile_id)
        ids = store.external_ids(pid)
        return events_page(pid, ids[0].collection if ids else "users", before, limit)

    return router
