"""What the console's endpoints need from the project, and the routers built from it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter

from traitsync.activation.config import ActivationConfig
from traitsync.definitions import Definitions
from traitsync.store.database import Database


@dataclass(frozen=True)
class ConsoleSources:
    """The parts of the resolved project the console reads (it never sees the YAML loader)."""

    db: Database
    definitions: Definitions
    activation: ActivationConfig
    #: The config document as parsed, to show each definition as it was written.
    document: Any
    #: Id types searched when a person types a bare value (the identity rules' first).
    id_types: tuple[str, ...]


def console_routers(sources: ConsoleSources, *, dependencies: Sequence[Any] = ()) -> list[APIRouter]:
    """``dependencies`` carries the management auth, given when each router is made."""
    from traitsync.console.computations_api import computations_console_router
    from traitsync.console.destinations_api import destinations_console_router
    from traitsync.console.identity_api import identity_console_router
    from traitsync.console.profiles_api import profiles_console_router

    return [factory(sources, list(dependencies)) for factory in (
        computations_console_router, profiles_console_router, destinations_console_router,
        identity_console_router)]
