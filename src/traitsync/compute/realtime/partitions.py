"""Partitions of the realtime engine: which profiles each owns, its checkpoints, the store's layout.

On PostgreSQL the engine's work is split by profile so that several processes (or machines)
share it: a profile belongs to partition ``md5(profile_id) mod count``. md5 because PostgreSQL
and Python compute it identically on every version and platform (``hashtext`` is internal and
may change between major versions, which would silently move profiles between partitions), so
a partition's rows are chosen in SQL and tests can predict them.

A partition keeps its own checkpoints (``realtime.p3/16`` and ``realtime.changes.p3/16``) and
reads both identity streams filtered to its profiles, interleaved by offset exactly as the
single engine does. The whole store (``count == 1``) keeps the historical names ``realtime``
and ``realtime.changes``, so SQLite and existing stores behave exactly as before. With several
partitions those two names are kept as the minimum over the partitions (see
:func:`publish_progress`): readers such as activation ("act on a merge once the engine has
processed it") keep reading one checkpoint and stay correct.

The store records its layout (``realtime.partitions``). A layout changes only when no worker
of another layout is alive and every partition of the old layout stands at the same offsets
(the single engine always does), because a profile that moves partition must resume from
exactly where its old partition stopped.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from traitsync.compute.realtime.store import CHANGES_CONSUMER, CONSUMER, serialise_writers
from traitsync.errors import ConfigError
from traitsync.log.event_log import Checkpoints
from traitsync.store.database import Connection

#: The checkpoint row recording how many partitions the store's engine state is split into.
LAYOUT = "realtime.partitions"
MAX_PARTITIONS = 1024


class PartitionLayoutError(ConfigError):
    """The store is partitioned differently and cannot be switched safely now."""


def partition_of(profile_id: str, count: int) -> int:
    """The partition of a profile; the same number as :func:`partition_sql` computes in PostgreSQL."""
    if count == 1:
        return 0
    return int(hashlib.md5(profile_id.encode()).hexdigest()[:8], 16) % count


def partition_sql(column: str, count: int) -> str:
    """SQL for the partition of ``column`` (PostgreSQL): the first 32 bits of its md5, mod ``count``."""
    return f"(('x' || substr(md5({column}), 1, 8))::bit(32)::bigint % {int(count)})"


@dataclass(frozen=True)
class Partition:
    """One partition of ``count``; ``Partition(0, 1)`` is the whole store (the single engine)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.count <= MAX_PARTITIONS or not 0 <= self.index < self.count:
            raise ValueError(f"no partition {self.index} of {self.count}")

    @property
    def whole(self) -> bool:
        return self.count == 1

    @property
    def events_consumer(self) -> str:
        return CONSUMER if self.whole else f"{CONSUMER}.p{self.index}/{self.count}"

    @property
    def changes_consumer(self) -> str:
        return CHANGES_CONSUMER if self.whole else f"{CHANGES_CONSUMER}.p{self.index}/{self.count}"

    def owns(self, profile_id: str) -> bool:
        return self.whole or partition_of(profile_id, self.count) == self.index

    def where(self, column: str) -> str:
        """An ``AND`` clause keeping this partition's rows ('' for the whole store)."""
        return "" if self.whole else f" AND {partition_sql(column, self.count)} = {self.index}"

    def where_change(self) -> str:
        """Profile changes this partition reads: its profiles', and merges absorbing one of its profiles."""
        if self.whole:
            return ""
        return (f" AND ({partition_sql('profile_id', self.count)} = {self.index} OR "
                f"(other_profile_id IS NOT NULL AND {partition_sql('other_profile_id', self.count)} = {self.index}))")

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def all_partitions(count: int) -> list[Partition]:
    return [Partition(i, count) for i in range(count)]


def stored_layout(conn: Connection) -> int:
    return Checkpoints.get(conn, LAYOUT) or 1


def publish_progress(conn: Connection, count: int) -> None:
    """Keep ``realtime``/``realtime.changes`` at the minimum over the partitions (call under the lock).

    Serialised by ``serialise_writers``, each transaction sees every earlier one's checkpoints,
    so the last writer's minimum is exact; the minimum only grows because each partition's does.
    """
    parts = all_partitions(count)
    names = [p.events_consumer for p in parts] + [p.changes_consumer for p in parts]
    marks = ",".join("?" * len(names))
    got = {str(c): int(o) for c, o in conn.fetchall(
        f'SELECT consumer, "offset" FROM checkpoints WHERE consumer IN ({marks})', names)}
    events = min(got.get(p.events_consumer, 0) for p in parts)
    changes = min(got.get(p.changes_consumer, 0) for p in parts)
    if Checkpoints.get(conn, CONSUMER) != events:
        Checkpoints.set(conn, CONSUMER, events)
    if Checkpoints.get(conn, CHANGES_CONSUMER) != changes:
        Checkpoints.set(conn, CHANGES_CONSUMER, changes)


def ensure_layout(conn: Connection, count: int, *, others_alive: bool = False) -> None:
    """Bring the store to ``count`` partitions, or raise if that would lose or repeat work.

    Call inside a transaction. ``others_alive`` says engines of another layout still run: then
    nothing may change. Switching copies the old partitions' common offsets to the new ones.
    """
    serialise_writers(conn)
    stored = stored_layout(conn)
    if stored == count:
        return
    old = all_partitions(stored)
    events = {Checkpoints.get(conn, p.events_consumer) for p in old}
    changes = {Checkpoints.get(conn, p.changes_consumer) for p in old}
    if others_alive or len(events) > 1 or len(changes) > 1:
        raise PartitionLayoutError(
            f"the engine state is split into {stored} partitions and cannot be split into {count} now: "
            f"run the engine with {stored} partitions until it has caught up (and stop every worker "
            "that uses another count), then restart with the new count")
    _start_partitions(conn, count, events.pop(), changes.pop())


def _start_partitions(conn: Connection, count: int, events: int, changes: int) -> None:
    for p in all_partitions(count):
        Checkpoints.set(conn, p.events_consumer, events)
        Checkpoints.set(conn, p.changes_consumer, changes)
    Checkpoints.set(conn, CONSUMER, events)
    Checkpoints.set(conn, CHANGES_CONSUMER, changes)
    Checkpoints.set(conn, LAYOUT, count)
