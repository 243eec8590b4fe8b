"""Who owns which engine partition: PostgreSQL session advisory locks, no coordinator of our own.

A worker holds, on its one connection, a shared "present" lock (so workers can count each
other) and one exclusive lock per partition it owns. PostgreSQL releases them when the session
ends, so a worker that dies (SIGKILL, a lost machine) frees its partitions for the others,
which look for unowned ones every second. Because the locks live on the same connection as the
engine's transactions, a worker that lost its session cannot commit anything afterwards: the
lock and the writes fail together, so two workers never process one partition at once.

A lost machine is noticed when PostgreSQL's TCP keepalive gives up on its socket; the session
asks for aggressive keepalives (about 10 s) so this takes seconds, not the kernel's two hours.
"""

from __future__ import annotations

import math

from traitsync.store.database import Connection

#: Second keys of our advisory locks (the first is the schema, so stores in other schemas are
#: independent): the "present" lock of a layout with ``count`` partitions is PRESENT_BASE + count,
#: partition ``i``'s lock is PARTITION_BASE + i.
PRESENT_BASE = 7353000
PARTITION_BASE = 7355000
_KEEPALIVES = ("SET tcp_keepalives_idle = 5", "SET tcp_keepalives_interval = 2", "SET tcp_keepalives_count = 3")
_OURS = ("FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
         "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
         "AND classid = hashtext(current_schema())::oid")


class Ownership:
    """The partition locks of one worker session (PostgreSQL only)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.owned: set[int] = set()

    def join(self, conn: Connection) -> None:
        """Announce this worker (a new session owns nothing yet)."""
        self.owned.clear()
        for sql in _KEEPALIVES:
            conn.execute(sql)
        conn.execute("SELECT pg_advisory_lock_shared(hashtext(current_schema()), ?)", (PRESENT_BASE + self.count,))
        conn.commit()

    def other_layouts_alive(self, conn: Connection) -> bool:
        """Whether workers configured with another partition count are running on this store."""
        value = conn.scalar(f"SELECT COUNT(*) {_OURS} AND objid BETWEEN ? AND ? AND objid <> ?",
                            (PRESENT_BASE + 1, PRESENT_BASE + 1024, PRESENT_BASE + self.count))
        conn.commit()
        return int(value or 0) > 0

    @staticmethod
    def any_alive(conn: Connection) -> bool:
        """Whether partition workers of any layout are running on this store (commits)."""
        value = conn.scalar(f"SELECT COUNT(*) {_OURS} AND objid BETWEEN ? AND ?",
                            (PRESENT_BASE + 1, PRESENT_BASE + 1024))
        conn.commit()
        return int(value or 0) > 0

    def alive(self, conn: Connection) -> int:
        """How many workers (sessions holding the "present" lock of this layout) are running."""
        value = conn.scalar(f"SELECT COUNT(*) {_OURS} AND objid = ?", (PRESENT_BASE + self.count,))
        conn.commit()
        return max(1, int(value or 0))

    def taken(self, conn: Connection) -> set[int]:
        rows = conn.fetchall(f"SELECT objid {_OURS} AND objid BETWEEN ? AND ?",
                             (PARTITION_BASE, PARTITION_BASE + self.count - 1))
        conn.commit()
        return {int(r[0]) - PARTITION_BASE for r in rows}

    def quota(self, conn: Connection) -> int:
        """The most partitions this worker should own: an even share among the live workers."""
        return math.ceil(self.count / self.alive(conn))

    def balance(self, conn: Connection, start: int = 0) -> tuple[set[int], set[int]]:
        """Take unowned partitions up to the quota, give back any above it; returns (taken, given back).

        ``start`` rotates where each worker starts looking, so that workers joining at the same
        moment mostly try different partitions.
        """
        quota = self.quota(conn)
        released: set[int] = set()
        while len(self.owned) > quota:
            index = max(self.owned)
            conn.execute("SELECT pg_advisory_unlock(hashtext(current_schema()), ?)", (PARTITION_BASE + index,))
            self.owned.discard(index)
            released.add(index)
        acquired: set[int] = set()
        if len(self.owned) < quota:
            busy = self.taken(conn)
            for step in range(self.count):
                if len(self.owned) >= quota:
                    break
                index = (start + step) % self.count
                if index in busy or index in self.owned:
                    continue
                if conn.scalar("SELECT pg_try_advisory_lock(hashtext(current_schema()), ?)",
                               (PARTITION_BASE + index,)):
                    self.owned.add(index)
                    acquired.add(index)
        conn.commit()
        return acquired, released
