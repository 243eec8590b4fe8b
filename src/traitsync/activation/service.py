"""Everything activation and delivery run in one process, built from the config in one call.

``server/assemble.py`` adds ``services()`` to the runtime and mounts ``router_factory``; the
demo and the CLI use the same object, so all three run the same wiring.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from traitsync.activation.config import ActivationConfig, ActivationDestination, load_activation
from traitsync.activation.lists import ListScheduler
from traitsync.activation.state import on_delivered
from traitsync.activation.worker import ActivationWorker
from traitsync.config import LoadedConfig
from traitsync.definitions import Definitions, load_definitions
from traitsync.delivery.limiter import RateLimiter
from traitsync.delivery.transport import Transport
from traitsync.delivery.worker import DestinationWorker
from traitsync.store.database import Database


@dataclass
class DeliveryService:
    """A ``DestinationWorker`` as a runtime service: its own thread until the runtime stops."""

    worker: DestinationWorker

    @property
    def name(self) -> str:
        return f"delivery-{self.worker.destination_id}"

    def run(self, stop: threading.Event) -> None:
        self.worker.start()
        stop.wait()
        self.worker.stop()


def destination_worker(db: Database, dest: ActivationDestination, *, transport: Transport | None = None,
                       **kwargs: Any) -> DestinationWorker:
    """The delivery worker of one destination, with activation's ``on_delivered`` hook."""
    return DestinationWorker(db, dest.id, dest.resolved.adapter, dest.resolved.settings,
                             limiter=RateLimiter(dest.rate), transport=transport, on_delivered=on_delivered,
                             **kwargs)


@dataclass
class ActivationServices:
    db: Database
    config: ActivationConfig
    worker: ActivationWorker
    scheduler: ListScheduler
    delivery: dict[str, DestinationWorker] = field(default_factory=dict)

    @classmethod
    def build(cls, loaded: LoadedConfig, db: Database, definitions: Definitions | None = None, *,
              transport: Transport | None = None, poll_interval: float = 0.05) -> ActivationServices:
        defs = definitions if definitions is not None else load_definitions(loaded.document)
        config = load_activation(loaded, defs)
        worker = ActivationWorker(db, loaded, defs, config=config)
        scheduler = ListScheduler(db, config)
        delivery = {d.id: destination_worker(db, d, transport=transport, poll_interval=poll_interval)
                    for d in config.destinations}
        return cls(db=db, config=config, worker=worker, scheduler=scheduler, delivery=delivery)

    def services(self) -> list[Any]:
        """Runtime services: the activation worker, the list scheduler, one delivery worker each."""
        out: list[Any] = []
        if self.config.event_destinations:
            out.append(self.worker)
        if self.config.list_destinations:
            out.append(self.scheduler)
        out.extend(DeliveryService(w) for w in self.delivery.values())
        return out
