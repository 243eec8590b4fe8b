"""The one shape every background stage has: ``name`` and ``run(stop)``.

The runtime starts each worker on a thread and stops them all with one event, so it needs no
per-stage adapters. Most stages are polling loops over durable input: they implement
``run_once() -> work done`` and inherit ``run`` from ``PollingWorker``, which sleeps
``poll_interval`` when idle and, after an error (the store down, a bug), drops the stage's
connection, waits and goes on: every stage keeps its progress in checkpoints committed with
its output, so the next round resumes exactly where the last commit left it.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol

import structlog

log = structlog.get_logger("traitsync.workers")


class Worker(Protocol):
    """A background stage: ``run(stop)`` returns once ``stop`` is set."""

    name: str

    def run(self, stop: threading.Event) -> None: ...


def wake_all(downstream: Sequence[Callable[[], None]]) -> None:
    """Tell the next stages there is new input (after a round that committed output)."""
    for wake in downstream:
        wake()


class PollingWorker(ABC):
    """``run(stop)`` for a stage that implements ``run_once()`` (and ``close()`` for its connection).

    An idle stage sleeps ``poll_interval`` unless an upstream stage in the same process calls
    :meth:`wake`: each stage polling 50 ms added up to 200 ms along the pipeline; a wake makes it
    look at once. Polling stays as the fallback (input from another process, a lost wake).
    """

    name: str = "worker"
    poll_interval: float = 0.05
    error_pause: float = 1.0
    #: Called after a round that did work (``build_stages`` wires the next stages' ``wake``).
    downstream: Sequence[Callable[[], None]] = ()
    _woken: threading.Event | None = None

    def wake(self) -> None:
        self._wake_event().set()

    def _wake_event(self) -> threading.Event:
        if self._woken is None:
            self._woken = threading.Event()
        return self._woken

    @abstractmethod
    def run_once(self) -> int:
        """Do one round of work; return how much was done (0: idle, so wait ``poll_interval``)."""

    def close(self) -> None:
        return None

    def run(self, stop: threading.Event) -> None:
        woken = self._wake_event()
        try:
            while not stop.is_set():
                try:
                    busy = self.run_once()
                except Exception:
                    log.exception("worker round failed; retrying", worker=self.name)
                    self.close()
                    stop.wait(self.error_pause)
                    continue
                if busy:
                    wake_all(self.downstream)
                else:
                    woken.wait(self.poll_interval)
                    woken.clear()
        finally:
            self.close()
