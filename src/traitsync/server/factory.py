"""Build the app from the environment, so uvicorn can start several worker processes.

``traitsync serve`` sets ``TRAITSYNC_CONFIG``, ``TRAITSYNC_DATABASE_URL`` and ``TRAITSYNC_ROLE``
and points uvicorn at ``build_app``; every worker process then builds the same app.
"""

from __future__ import annotations

import os

from fastapi import FastAPI

from traitsync.config import load_config
from traitsync.server.app import create_app
from traitsync.server.assemble import assemble
from traitsync.server.project import resolve_project
from traitsync.store import Database


def build_app() -> FastAPI:
    loaded = load_config(os.environ.get("TRAITSYNC_CONFIG"))
    db = Database(os.environ.get("TRAITSYNC_DATABASE_URL"), durability=loaded.config.storage.durability)
    runtime, routers, _ = assemble(resolve_project(loaded), db, role=os.environ.get("TRAITSYNC_ROLE", "all"))
    return create_app(runtime, extra_routers=routers)
