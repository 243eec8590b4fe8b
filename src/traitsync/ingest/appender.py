"""Group commit: one writer thread turns many concurrent requests into one transaction.

Each request hands its events to the writer and waits; the writer drains everything queued,
commits once, then answers all of them. Under load a single commit (and, with
``durability: full``, a single fsync) is shared by many requests, which is what lets a
one-writer SQLite log keep up with concurrent clients without acknowledging anything early.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass

import structlog

from traitsync.errors import StorageUnavailable
from traitsync.log import AppendResult, EventLog, SourceBatch
from traitsync.store.database import Connection

log = structlog.get_logger("traitsync.ingest")


@dataclass
class _Job:
    batch: SourceBatch
    future: Future[AppendResult]


class Appender:
    """The single writer of one process; ``submit`` is thread-safe and returns a future."""

    def __init__(self, event_log: EventLog, *, max_rows_per_commit: int = 20_000,
                 on_commit: object = None) -> None:
        self.event_log = event_log
        self.max_rows = max_rows_per_commit
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="traitsync-appender", daemon=True)
        self._conn: Connection | None = None
        self.healthy = True
        self.last_error: str | None = None
        self.commit_seconds: list[float] = []
        self._started = False
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if not self._started:
                self._thread.start()
                self._started = True

    def submit(self, batch: SourceBatch) -> Future[AppendResult]:
        self.start()
        future: Future[AppendResult] = Future()
        self._queue.put(_Job(batch, future))
        return future

    def stop(self, timeout: float = 10.0) -> None:
        """Finish everything queued, then stop; used on clean shutdown."""
        if self._started:
            self._queue.put(None)
            self._thread.join(timeout)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _drain(self, first: _Job) -> tuple[list[_Job], bool]:
        jobs = [first]
        rows = len(first.batch.accepted)
        stop = False
        while rows < self.max_rows:
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            if job is None:
                stop = True
                break
            jobs.append(job)
            rows += len(job.batch.accepted)
        return jobs, stop

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            jobs, stop = self._drain(first)
            self._commit(jobs)
            if stop:
                return

    def _commit(self, jobs: list[_Job]) -> None:
        started = time.perf_counter()
        try:
            if self._conn is None:
                self._conn = self.event_log.db.connect()
            results = self.event_log.append_batches(self._conn, [j.batch for j in jobs])
        except StorageUnavailable as exc:
            if self.healthy:
                log.error("event log cannot commit; answering 503 until it recovers", error=str(exc))
            self.healthy = False
            self.last_error = str(exc)
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            for job in jobs:
                job.future.set_exception(exc)
            return
        except BaseException as exc:  # a bug, not storage: fail these requests, keep serving
            log.exception("unexpected error while appending to the event log")
            for job in jobs:
                job.future.set_exception(exc)
            return
        if not self.healthy:
            log.info("event log commits again; ingestion resumed")
        self.healthy = True
        self.last_error = None
        elapsed = time.perf_counter() - started
        for job, result in zip(jobs, results, strict=True):
            job.future.set_result(result)
        self.commit_seconds.append(elapsed)
        if len(self.commit_seconds) > 1000:
            del self.commit_seconds[:500]
