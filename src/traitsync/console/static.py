"""Serve the built console: ``/`` is the page, ``/console/...`` its hashed assets.

Files are read from the package (``static/``), so a wheel or a plain ``pip install`` serves
the same console as a checkout; nothing is fetched from a CDN. Asset names carry a content
hash, so they are cached for a year; the page itself is never cached, so an upgrade shows at
the next reload.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse

STATIC_DIR = Path(__file__).with_name("static")
_MISSING = ("<!doctype html><title>traitsync</title><p>The console was not built into this install: "
            "run <code>make console</code> in a checkout, or use the management API at "
            "<a href=/docs>/docs</a>.</p>")


def static_router(root: Path = STATIC_DIR) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    base = root.resolve()

    @router.get("/")
    def index() -> HTMLResponse:
        page = base / "index.html"
        if not page.is_file():
            return HTMLResponse(_MISSING, status_code=503)
        return HTMLResponse(page.read_text(encoding="utf-8"), headers={"Cache-Control": "no-cache"})

    @router.get("/console/{path:path}")
    def asset(path: str) -> FileResponse:
        file = (base / path).resolve()
        # Resolved and then checked, so ``..`` or a symlink can never leave the static folder.
        if not file.is_relative_to(base) or not file.is_file():
            raise HTTPException(404, detail={"code": "not_found", "message": f"no console file {path!r}"})
        return FileResponse(file, headers={"Cache-Control": "public, max-age=31536000, immutable"})

    return router
