"""Wire the stages into one runtime: which workers run and which routers are mounted.

This is the one place that knows every stage; the stages themselves only know the ones
before them in the flow. Each stage has its own block below.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from traitsync.config import LoadedConfig
from traitsync.server.app import RouterFactory
from traitsync.server.runtime import Runtime
from traitsync.store import Database


@dataclass
class LoopService:
    """Adapts a stage's ``run_forever(stop_event, **options)`` to the runtime's Service protocol."""

    name: str
    target: Any
    options: dict[str, Any] = field(default_factory=dict)

    def run(self, stop: threading.Event) -> None:
        self.target.run_forever(stop, **self.options)


#: How long an idle stage waits before looking at its input again. Every stage polls, so these
#: add up along the pipeline; 50 ms each keeps event-to-destination latency low at the cost of
#: one cheap query per stage every 50 ms when idle.
IDLE_POLL_SECONDS = 0.05


def assemble(loaded: LoadedConfig, db: Database, *, role: str = "all") -> tuple[Runtime, list[RouterFactory]]:
    runtime = Runtime(loaded, db, role=role)
    routers: list[RouterFactory] = []

    # --- identity and profiles -------------------------------------------------------------
    from traitsync.identity import IdentityWorker, load_identity_config

    identity_config = load_identity_config(loaded.document)
    runtime.identity_config = identity_config  # type: ignore[attr-defined]
    if runtime.runs_workers:
        runtime.add_service(LoopService("identity", IdentityWorker(db, identity_config),
                                        {"idle_sleep": IDLE_POLL_SECONDS}))

    # --- computations (realtime engine) and the Profile API ----------------------------------
    from traitsync.compute.realtime import RealtimeEngine, computations_router, computed_traits_provider
    from traitsync.definitions import load_definitions
    from traitsync.profiles.api import profile_api_router

    definitions = load_definitions(loaded.document)
    runtime.definitions = definitions  # type: ignore[attr-defined]
    if runtime.runs_workers:
        runtime.add_service(LoopService("engine", RealtimeEngine(db, definitions),
                                        {"poll_seconds": IDLE_POLL_SECONDS}))
    routers.append(lambda _rt: computations_router(db, definitions))
    profile_api = loaded.config.profile_api
    if profile_api is not None and runtime.runs_api:
        secret = profile_api.access_secret.get_secret_value()
        space_id = loaded.config.space_id
        routers.append(lambda _rt: profile_api_router(db, space_id, secret,
                                                      computed_values=computed_traits_provider(db)))

    # --- activation and delivery ------------------------------------------------------------
    from traitsync.activation.routes import destinations_router
    from traitsync.activation.service import ActivationServices

    activation = ActivationServices.build(loaded, db)
    runtime.activation = activation  # type: ignore[attr-defined]
    if runtime.runs_workers:
        for service in activation.services():
            runtime.add_service(service)
    from fastapi import Depends

    from traitsync.server.auth import ManagementAuth

    manage_token = loaded.config.management_api.token.get_secret_value() if loaded.config.management_api else None
    routers.append(lambda _rt: destinations_router(db, activation.config, activation.delivery, activation.scheduler,
                                                   dependencies=[Depends(ManagementAuth(manage_token))]))

    from traitsync.activation.routes import DeliveryCollector

    runtime.metric_collectors = [DeliveryCollector(db, activation.config)]  # type: ignore[attr-defined]
    return runtime, routers
