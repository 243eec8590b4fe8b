"""The engine as one of several workers: it runs the partitions this worker owns (PostgreSQL).

Each ``traitsync serve --role worker`` process, on any machine, runs one of these. Every
second it counts the live workers and takes unowned partitions up to an even share (or gives
back any above it), through :class:`Ownership`'s advisory locks. Each owned partition is a
:class:`RealtimeEngine` limited to that partition, with its own checkpoints and cache, made
afresh whenever the partition is taken (another worker may have moved it on meanwhile), and
sharing this worker's connection, whose session holds the locks.

After any error the connection is dropped, which releases every partition at once; the worker
then joins again and takes partitions like a newcomer. Idle rounds ask the store once whether
any owned partition has work, instead of asking each partition.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Sequence

import structlog

from traitsync.compute.realtime.engine import IDENTITY_CONSUMER, RealtimeEngine
from traitsync.compute.realtime.ownership import Ownership
from traitsync.compute.realtime.partitions import Partition, ensure_layout, partition_sql
from traitsync.definitions import Definitions
from traitsync.store.database import Connection, Database, OwnedConnection
from traitsync.workers import wake_all

log = structlog.get_logger("traitsync.engine")
DEFAULT_PARTITIONS = 1


class PartitionedEngine(OwnedConnection):
    """A worker running the engine partitions it owns; several of them share one store."""

    name = "engine"
    poll_interval = 0.05
    #: How often ownership is re-balanced (a dead worker's partitions are taken within about this).
    balance_seconds = 1.0
    error_pause = 1.0
    #: Called after a round with output (``build_stages`` wires activation's ``wake``).
    downstream: Sequence[Callable[[], None]] = ()

    def __init__(self, db: Database, definitions: Definitions, *, partitions: int = DEFAULT_PARTITIONS,
                 clock: Callable[[], float] = time.time, cache_profiles: int = 50_000,
                 chunk_size: int = 1000) -> None:
        if db.dialect != "postgresql":
            raise ValueError("engine partitions need PostgreSQL; on SQLite the engine runs as one process")
        self.db = db
        self.definitions = definitions
        self.ownership = Ownership(partitions)
        self.count = partitions
        self.clock = clock
        self.chunk_size = chunk_size
        self.cache_per_partition = max(1000, cache_profiles // partitions)
        self.engines: dict[int, RealtimeEngine] = {}
        self._joined = False
        self._next_balance = 0.0
        self._wake = threading.Event()
        self._start = os.getpid() % partitions

    # -- ownership ------------------------------------------------------------------------------
    def close(self) -> None:
        """Drop the session: every partition lock goes with it."""
        self.engines.clear()
        self.ownership.owned.clear()
        self._joined = False
        super().close()

    def _join(self, conn: Connection) -> None:
        self.ownership.join(conn)
        with conn.transaction():
            ensure_layout(conn, self.count, others_alive=self.ownership.other_layouts_alive(conn))
        self._joined = True
        self._next_balance = 0.0

    def join(self) -> None:
        """Announce this worker before taking partitions, so that workers starting together share
        them at once (``balance`` joins by itself)."""
        if not self._joined:
            self._join(self.connection())

    def balance(self) -> None:
        """Take or give back partitions now (normally every ``balance_seconds``)."""
        self.join()
        conn = self.connection()
        acquired, released = self.ownership.balance(conn, self._start)
        for index in released:
            self.engines.pop(index, None)
        for index in sorted(acquired):
            self.engines[index] = RealtimeEngine(
                self.db, self.definitions, clock=self.clock, cache_profiles=self.cache_per_partition,
                chunk_size=self.chunk_size, partition=Partition(index, self.count), connect=self.connection)
        if acquired or released:
            log.info("engine partitions", owned=sorted(self.engines), acquired=sorted(acquired),
                     released=sorted(released))
        self._next_balance = time.monotonic() + self.balance_seconds

    @property
    def owned(self) -> list[int]:
        return sorted(self.engines)

    # -- work -----------------------------------------------------------------------------------
    def _with_work(self, now_ms: int) -> tuple[set[int], set[int]]:
        """The owned partitions with unread input, and those with due times that have come."""
        conn = self.connection()
        rows = conn.fetchall('SELECT consumer, "offset" FROM checkpoints WHERE consumer = ? OR consumer LIKE ?',
                             (IDENTITY_CONSUMER, "realtime%"))
        head = conn.scalar('SELECT MAX("offset") FROM profile_changes')
        due = conn.fetchall(f"SELECT DISTINCT {partition_sql('profile_id', self.count)} FROM compute_profile_due "
                            "WHERE due_at_ms <= ?", (now_ms,))
        conn.commit()
        seen = {str(c): int(o) for c, o in rows}
        identity, changes = seen.get(IDENTITY_CONSUMER, 0), int(head or 0)
        behind = {i for i, e in self.engines.items()
                  if not e.live or seen.get(e.partition.events_consumer, 0) < identity
                  or seen.get(e.partition.changes_consumer, 0) < changes}
        return behind, {int(r[0]) for r in due} & set(self.engines)

    def run_once(self) -> int:
        """One round: re-balance if it is time, then one chunk (and due times) per owned partition."""
        if not self._joined or time.monotonic() >= self._next_balance:
            self.balance()
        if not self.engines:
            return 0
        now = int(self.clock() * 1000)
        behind, due = self._with_work(now)
        done = 0
        for index in sorted(behind | due):
            engine = self.engines[index]
            if index in behind:
                done += engine.run_once()
            if index in due:
                done += engine.fire_due(now)
            if time.monotonic() >= self._next_balance:
                break  # re-balance first: a dead worker's partitions must not wait for a long round
        return done

    def next_due_ms(self) -> int | None:
        if not self.engines:
            return None
        conn = self.connection()
        owned = ",".join(str(i) for i in self.engines)
        value = conn.scalar(f"SELECT MIN(due_at_ms) FROM compute_profile_due "
                            f"WHERE {partition_sql('profile_id', self.count)} IN ({owned})")
        conn.commit()
        return None if value is None else int(value)

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        """The worker shape every stage shares; sleeps until new input, a due time or a re-balance."""
        try:
            while not stop.is_set():
                try:
                    if self.run_once():
                        wake_all(self.downstream)
                        continue
                    wait = min(self.poll_interval, max(0.0, self._next_balance - time.monotonic()))
                    nxt = self.next_due_ms()
                    if nxt is not None:
                        wait = min(wait, max(0.0, (nxt - self.clock() * 1000) / 1000))
                except Exception:
                    log.exception("engine round failed; releasing partitions and retrying")
                    self.close()
                    stop.wait(self.error_pause)
                    continue
                self._wake.wait(wait)
                self._wake.clear()
        finally:
            self.close()
