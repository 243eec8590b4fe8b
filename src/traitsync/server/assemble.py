"""Compose the stages: the one place that knows every stage, used by serve, the demo and the CLI.

``build_stages`` makes one worker per stage from the resolved ``Project`` (each stage gets its
own typed part of it); ``assemble`` adds them to a runtime and mounts the routers. Every worker
has the same shape (``name`` and ``run(stop)``, ``traitsync.workers``), so the runtime starts,
stops and restarts them all alike.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends

from traitsync.activation.lists import ListScheduler
from traitsync.activation.routes import DeliveryCollector, destinations_router
from traitsync.activation.worker import ActivationWorker
from traitsync.compute.batch.api import preview_router
from traitsync.compute.batch.sql_schedule import SqlTraitScheduler
from traitsync.compute.realtime import RealtimeEngine, computations_router, computed_traits_provider, journeys_router
from traitsync.compute.realtime.partitioned import PartitionedEngine
from traitsync.console import ConsoleSources, console_routers, static_router
from traitsync.delivery.backoff import Backoff
from traitsync.delivery.limiter import Limiter, RateLimiter
from traitsync.delivery.shared_limiter import SharedRateLimiter
from traitsync.delivery.transport import Transport
from traitsync.delivery.worker import DestinationWorker
from traitsync.identity import IdentityWorker
from traitsync.privacy import PrivacyWorker
from traitsync.privacy.routes import regulations_router
from traitsync.profiles.api import profile_api_router
from traitsync.retention import RetentionWorker
from traitsync.server.app import RouterFactory
from traitsync.server.auth import ManagementAuth
from traitsync.server.exclusive import Exclusive
from traitsync.server.project import Project
from traitsync.server.runtime import Runtime
from traitsync.server.tokens import TokenDirectory
from traitsync.store import Database
from traitsync.workers import Worker

#: How long an idle stage waits before looking at its input again. Every stage polls, so these
#: add up along the pipeline; 50 ms each keeps event-to-destination latency low at the cost of
#: one cheap query per stage every 50 ms when idle.
IDLE_POLL_SECONDS = 0.05
#: Stages that expect to be alone on a store, with their advisory lock keys: with worker
#: processes on several machines, one process runs each (``server.exclusive``).
EXCLUSIVE_STAGES = {"activation": 7352030, "lists": 7352031}


@dataclass
class Stages:
    """One worker per stage, built from the project."""

    project: Project
    identity: IdentityWorker
    engine: RealtimeEngine | PartitionedEngine
    activation: ActivationWorker
    lists: ListScheduler
    privacy: PrivacyWorker
    retention: RetentionWorker
    delivery: dict[str, DestinationWorker] = field(default_factory=dict)
    sql_traits: SqlTraitScheduler | None = None

    def workers(self) -> list[Worker]:
        """What a worker process runs: stages with nothing to do are left out."""
        out: list[Worker] = [self.identity, self.engine]
        if self.sql_traits is not None:
            out.append(self.sql_traits)
        if self.project.activation.event_destinations:
            out.append(self.activation)
        if self.project.activation.list_destinations:
            out.append(self.lists)
        out.extend(self.delivery.values())
        out += [self.privacy, self.retention]
        return out


def build_stages(project: Project, db: Database, *, transport: Transport | None = None,
                 shared_limits: bool = True, delivery_poll: float = IDLE_POLL_SECONDS,
                 backoff: Backoff | None = None, **delivery_options: Any) -> Stages:
    """``shared_limits`` keeps each destination's cap in the store, so it holds across processes.

    On PostgreSQL the engine is a :class:`PartitionedEngine`, so ``serve --role worker`` on
    several machines shares the engine's work; SQLite keeps the single engine."""
    identity = IdentityWorker(db, project.identity)
    identity.poll_interval = IDLE_POLL_SECONDS
    engine: RealtimeEngine | PartitionedEngine
    if db.dialect == "postgresql":  # any number of worker processes share the partitions
        engine = PartitionedEngine(db, project.definitions, partitions=project.loaded.config.engine.partitions)
    else:
        engine = RealtimeEngine(db, project.definitions)
    engine.poll_interval = IDLE_POLL_SECONDS
    delivery: dict[str, DestinationWorker] = {}
    for target in project.delivery:
        limiter: Limiter = (SharedRateLimiter(db, target.destination_id, target.rate) if shared_limits
                            else RateLimiter(target.rate))
        delivery[target.destination_id] = DestinationWorker(db, target, limiter=limiter, transport=transport,
                                                            poll_interval=delivery_poll, backoff=backoff,
                                                            **delivery_options)
    activation = ActivationWorker(db, project.activation, poll_interval=IDLE_POLL_SECONDS)
    # In one process each stage wakes the next when it commits output, instead of the next
    # noticing at its following poll.
    identity.downstream = (engine.wake,)
    engine.downstream = (activation.wake,)
    activation.downstream = tuple(worker.wake for worker in delivery.values())
    activation_runs = bool(project.activation.event_destinations)
    return Stages(project=project, identity=identity, engine=engine, activation=activation,
                  lists=ListScheduler(db, project.activation), delivery=delivery,
                  privacy=PrivacyWorker(db, send_exits=project.loaded.config.privacy.send_exits,
                                        activation_runs=activation_runs),
                  retention=RetentionWorker(db, project.loaded.config.retention, activation_runs=activation_runs),
                  sql_traits=SqlTraitScheduler(db, project.sql_traits) if project.sql_traits else None)


def assemble(project: Project, db: Database, *, role: str = "all", stages: Stages | None = None
             ) -> tuple[Runtime, list[RouterFactory], Stages]:
    runtime = Runtime(project.loaded, db, role=role)
    stages = stages or build_stages(project, db)
    if runtime.runs_workers:
        for worker in stages.workers():
            key = EXCLUSIVE_STAGES.get(worker.name)
            runtime.add_service(worker if key is None else Exclusive(worker, db, key))
    routers: list[RouterFactory] = [lambda _rt: computations_router(db, project.definitions),
                                    lambda _rt: journeys_router(db, project.definitions),
                                    lambda _rt: preview_router(db, project.definitions)]
    profile_api = project.loaded.config.profile_api
    if profile_api is not None and profile_api.secrets() and runtime.runs_api:
        secrets = profile_api.secrets()
        space_id = project.space_id
        routers.append(lambda _rt: profile_api_router(db, space_id, secrets,
                                                      computed_values=computed_traits_provider(db)))
    auth = [Depends(ManagementAuth(TokenDirectory(project.loaded.config.management_api, db)))]
    routers.append(lambda _rt: destinations_router(db, project.activation, project.delivery, stages.lists,
                                                   dependencies=auth))
    routers.append(lambda _rt: regulations_router(db, dependencies=auth))
    routers.extend(_console(project, db, auth))
    runtime.metric_collectors = [DeliveryCollector(db, project.activation)]
    return runtime, routers, stages


def _console(project: Project, db: Database, auth: list[Any]) -> list[RouterFactory]:
    """The web console at ``/`` and the endpoints its pages read (management token required)."""
    from traitsync.profiles.lookup import DEFAULT_ID_TYPES

    sources = ConsoleSources(db=db, definitions=project.definitions, activation=project.activation,
                             document=project.loaded.document.data,
                             id_types=tuple(dict.fromkeys([*project.identity.rules, *DEFAULT_ID_TYPES])))
    routers = console_routers(sources, dependencies=auth)
    return [*(lambda _rt, r=r: r for r in routers), lambda _rt: static_router()]
