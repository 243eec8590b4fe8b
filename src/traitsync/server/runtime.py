"""What one traitsync process runs: the store, the log writer and the background workers.

The API and the workers share this object so that ``traitsync serve`` can run both in one
process (the default) or either alone (``--role api|worker``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import structlog

from traitsync.config import LoadedConfig
from traitsync.ingest.appender import Appender
from traitsync.log import EventLog
from traitsync.store import Database, migrate
from traitsync.workers import Worker

log = structlog.get_logger("traitsync.runtime")


@dataclass
class Runtime:
    loaded: LoadedConfig
    db: Database
    role: str = "all"
    services: list[Worker] = field(default_factory=list)
    metric_collectors: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        migrate(self.db)
        self.event_log = EventLog(self.db, auto_migrate=False)
        self.appender = Appender(self.event_log)
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    @property
    def runs_api(self) -> bool:
        return self.role in ("all", "api")

    @property
    def runs_workers(self) -> bool:
        return self.role in ("all", "worker")

    def add_service(self, service: Worker) -> None:
        self.services.append(service)

    def start(self) -> None:
        if self.runs_api:
            self.appender.start()
        if not self.runs_workers:
            return
        for service in self.services:
            thread = threading.Thread(target=self._guarded(service), name=f"traitsync-{service.name}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
            log.info("worker started", worker=service.name)

    def _guarded(self, service: Worker) -> Callable[[], None]:
        """Run a worker loop; after an error (storage down, a bug) restart it with backoff.

        Every stage keeps its progress in checkpoints committed with its output, so a restarted
        loop resumes exactly where the last commit left it.
        """

        def run() -> None:
            delay = 1.0
            while not self._stop.is_set():
                try:
                    service.run(self._stop)
                    return
                except Exception:
                    log.exception("worker failed; restarting it", worker=service.name, retry_in_s=delay)
                    close = getattr(service, "close", None)
                    if callable(close):  # its connection may be dead (a database restart): start afresh
                        try:
                            close()
                        except Exception:
                            log.exception("closing a failed worker failed", worker=service.name)
                    self._stop.wait(delay)
                    delay = min(delay * 2, 30.0)

        return run

    def stop(self, timeout: float = 15.0) -> None:
        """Drain: the writer commits what it holds, workers finish their current step."""
        self._stop.set()
        self.appender.stop(timeout)
        for thread in self._threads:
            thread.join(timeout)
