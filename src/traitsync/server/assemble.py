"""Wire the stages into one runtime: which workers run and which routers are mounted.

This is the one place that knows every stage; the stages themselves only know the ones
before them in the flow.
"""

from __future__ import annotations

from traitsync.config import LoadedConfig
from traitsync.server.app import RouterFactory
from traitsync.server.runtime import Runtime
from traitsync.store import Database


def assemble(loaded: LoadedConfig, db: Database, *, role: str = "all") -> tuple[Runtime, list[RouterFactory]]:
    runtime = Runtime(loaded, db, role=role)
    routers: list[RouterFactory] = []
    return runtime, routers
