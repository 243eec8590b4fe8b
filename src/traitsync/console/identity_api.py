"""Identity pages: violations by category, and the explain tree of an identifier."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query
from rich.text import Text
from rich.tree import Tree

from traitsync.console.routes import ConsoleSources
from traitsync.identity.explain import explain, violations


def tree_nodes(tree: Tree) -> dict[str, Any]:
    """A Rich tree (what ``traitsync identity explain`` prints) as ``{label, children}`` with the
    markup removed, so the console and the terminal tell the same story from one function."""
    label = tree.label if isinstance(tree.label, str) else str(tree.label)
    return {"label": Text.from_markup(label).plain, "children": [tree_nodes(c) for c in tree.children]}


def identity_console_router(src: ConsoleSources, dependencies: list[Any]) -> APIRouter:
    router = APIRouter(prefix="/api/v1/identity", tags=["Console"], dependencies=dependencies)

    @router.get("/violations", summary="Identity violations by category, with the newest samples")
    def list_violations(samples: int = Query(5, ge=0, le=50)) -> dict[str, Any]:
        return {"categories": [{"category": v.category, "count": v.count, "samples": v.samples}
                               for v in violations(src.db, samples=samples)]}

    @router.get("/explain", summary="Why these identifiers are one profile: merges, refusals, as a tree")
    def explain_identifier(identifier: str = Query(..., description="type:value, e.g. email:ada@example.com"),
                           collection: str = "users") -> dict[str, Any]:
        id_type, sep, value = identifier.partition(":")
        if not sep or not id_type or not value:
            raise HTTPException(400, detail={"code": "bad_identifier", "message": "name it as type:value"})
        found = explain(src.db, id_type, value, collection)
        return {"identifier": identifier, "profile_id": found.profile_id, "data": found.data,
                "tree": tree_nodes(found.tree)}

    return router
