"""Everything activation and delivery run in one process, built from the config in one call.

``server/assemble.py`` adds ``services()`` to the runtime and mounts ``router_factory``; the
demo and the CLI use the same object, so all three run the same wiring.
"""

from __future__ import annotations

import hashlib
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
from traitsync.delivery.outbox import IN_FLIGHT
from traitsync.delivery.transport import Transport
from traitsync.delivery.worker import DestinationWorker
from traitsync.store.database import Connection, Database


def _lock_key(destination_id: str) -> int:
    digest = hashlib.sha256(f"traitsync.delivery:{destination_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class DeliveryService:
    """A ``DestinationWorker`` as a runtime service: its own thread until the runtime stops.

    **Orphaned claims.** A process killed mid-delivery leaves rows ``in_flight`` under a lease
    (2 minutes), and per-profile order holds that profile's later messages behind them. At start
    we hand such rows back at once when no other live process can own them: on SQLite only one
    process delivers; on PostgreSQL every delivering process holds a shared advisory lock per
    destination for its lifetime (the server drops it when a killed process's session ends), so
    winning the exclusive lock proves every in-flight row is orphaned. Otherwise the lease decides.
    """

    worker: DestinationWorker
    _lock_conn: Connection | None = None

    @property
    def name(self) -> str:
        return f"delivery-{self.worker.destination_id}"

    def recover(self) -> int:
        """Release orphaned in-flight rows of this destination; returns how many."""
        db = self.worker.db
        dest = self.worker.destination_id
        conn: Connection | None = db.connect()
        assert conn is not None
        try:
            if db.dialect == "postgresql":
                key = _lock_key(dest)
                alone = bool(conn.scalar("SELECT pg_try_advisory_lock(?)", (key,)))
                released = self._release(conn) if alone else 0
                if alone:
                    conn.execute("SELECT pg_advisory_unlock(?)", (key,))
                conn.execute("SELECT pg_advisory_lock_shared(?)", (key,))
                conn.commit()
                self._lock_conn, conn = conn, None  # held (session lock) until the service stops
                return released
            return self._release(conn)
        finally:
            if conn is not None:
                conn.close()

    def _release(self, conn: Connection) -> int:
        ids = [int(r[0]) for r in conn.fetchall("SELECT id FROM delivery_outbox WHERE destination_id = ? AND state = ?",
                                                (self.worker.destination_id, IN_FLIGHT))]
        conn.commit()
        self.worker.outbox.release(conn, ids)
        return len(ids)

    def run(self, stop: threading.Event) -> None:
        self.recover()
        self.worker.start()
        stop.wait()
        self.worker.stop()
        if self._lock_conn is not None:
            self._lock_conn.close()
            self._lock_conn = None


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
