"""The ``computations`` table: which definitions the engine knows, their versions and status.

A definition is identified by its key and versioned by the hash of its IR. A new key, or a key
whose hash changed, is (re)created now: its history rule (spec 4.5) counts from this moment,
and if the engine has already consumed events it is backfilled from the store, together with
every computation that reads it. The backfill cursor is saved with each page, so a crash resumes
where it stopped. With several partitions each backfills its own profiles up to its own
checkpoint and marks itself done; the last one to finish moves the status on (see
``finish_backfill``). Status lifecycle: Backfilling -> Computing (catching up the stream) -> Live
(caught up); Failed when a definition cannot be evaluated (the error is kept).
"""

from __future__ import annotations

import hashlib

from traitsync.compute.realtime.journey_steps import compile_for
from traitsync.compute.realtime.partitions import Partition, all_partitions
from traitsync.compute.realtime.state import Compiled, definition_hash
from traitsync.compute.realtime.store import serialise_writers
from traitsync.definitions import Definitions, ir
from traitsync.log.event_log import Checkpoints
from traitsync.store.database import Connection, Database

_CANONICAL = ("FROM profiles p WHERE p.collection = 'users' AND p.created_offset <= ? AND NOT EXISTS "
              "(SELECT 1 FROM identity_merges m WHERE m.absorbed_id = p.profile_id AND m.event_offset <= ?)")


def _unsupported(defn: ir.Definition, partition: Partition) -> str | None:
    """Why the engine cannot compute ``defn`` here (None: it can).

    An account's events come from users of every partition, so one partition cannot follow
    them: account-level definitions need the engine in one partition (the default).
    """
    if defn.options.level == "account" and not partition.whole:
        return (f"account-level definitions need the realtime engine in one partition "
                f"(engine.partitions is {partition.count})")
    return None


class Registry:
    def __init__(self, db: Database, definitions: Definitions, conn: Connection, now_ms: int,
                 partition: Partition | None = None) -> None:
        self.db = db
        self.definitions = definitions
        self.conn = conn
        self.now_ms = now_ms
        self.partition = partition or Partition()
        self._where = self.partition.where("p.profile_id")

    def _consumed(self) -> bool:
        """Whether the engine (any partition of it) has consumed events already."""
        names = [p.events_consumer for p in all_partitions(self.partition.count)]
        marks = ",".join("?" * len(names))
        value = self.conn.scalar(f'SELECT MAX("offset") FROM checkpoints WHERE consumer IN ({marks})', names)
        return int(value or 0) > 0

    def sync(self) -> tuple[dict[str, Compiled], set[str]]:
        """Insert new definitions, re-version changed ones; returns compiled definitions and failed keys."""
        conn = self.conn
        compiled: dict[str, Compiled] = {}
        failed: set[str] = set()
        with conn.transaction():
            serialise_writers(conn)  # engines of other partitions may be registering the same keys
            consumed = self._consumed()
            known = {str(r[0]): (str(r[1]), str(r[2]), int(r[3])) for r in conn.fetchall(
                "SELECT key, definition_hash, status, created_at_ms FROM computations")}
            changed: set[str] = set()
            for key in self.definitions.order:
                defn = self.definitions[key]
                digest = definition_hash(defn)
                row = known.get(key)
                if row is None:
                    conn.execute(
                        "INSERT INTO computations (key, id, class, definition_hash, status, created_at_ms, size, "
                        "last_change_at_ms, backfill_cursor, error) VALUES (?, ?, ?, ?, ?, ?, 0, NULL, NULL, NULL)",
                        (key, defn.id, defn.computation_class, digest, "Computing", self.now_ms))
                    created = self.now_ms
                    changed.add(key)
                elif row[0] != digest:
                    conn.execute("UPDATE computations SET definition_hash = ?, status = 'Computing', "
                                 "created_at_ms = ?, backfill_cursor = NULL, error = NULL WHERE key = ?",
                                 (digest, self.now_ms, key))
                    created = self.now_ms
                    changed.add(key)
                else:
                    created = row[2]
                    if row[1] == "Failed":
                        conn.execute("UPDATE computations SET status = 'Computing', error = NULL WHERE key = ?",
                                     (key,))
                problem = _unsupported(defn, self.partition)
                if problem is not None:
                    conn.execute("UPDATE computations SET status = 'Failed', error = ? WHERE key = ?",
                                 (problem, key))
                    failed.add(key)
                    continue
                compiled[key] = compile_for(defn, created)
            if consumed:
                todo = list(changed)
                while todo:  # readers of a changed definition are re-evaluated with it
                    for consumer in self.definitions.consumers(todo.pop()):
                        if consumer not in changed:
                            changed.add(consumer)
                            todo.append(consumer)
                for key in changed - failed:
                    conn.execute("UPDATE computations SET status = 'Backfilling' WHERE key = ?", (key,))
        return compiled, failed

    def pending_backfill(self) -> set[str]:
        rows = self.conn.fetchall("SELECT key FROM computations WHERE status = 'Backfilling'")
        self.conn.commit()
        return {str(r[0]) for r in rows if str(r[0]) in self.definitions}

    def backfill_cursor(self, keys: set[str]) -> str:
        """Where to resume: the smallest cursor among the keys ('' = from the start).

        A partition restarts its backfill from the start after a crash (one cursor per key
        cannot serve several partitions): rebuilding a profile from its history again changes
        nothing, so this only costs time.
        """
        if not self.partition.whole:
            return ""
        cursors = []
        for key in keys:
            value = self.conn.scalar("SELECT backfill_cursor FROM computations WHERE key = ?", (key,))
            cursors.append("" if value is None else str(value))
        self.conn.commit()
        return min(cursors, default="")

    def canonical_count(self, upto: int) -> int:
        value = self.conn.scalar("SELECT COUNT(*) " + _CANONICAL + self._where, (upto, upto))
        self.conn.commit()
        return int(value or 0)

    def backfill_done(self, keys: set[str], upto: int) -> int:
        cursor = self.backfill_cursor(keys)
        value = self.conn.scalar("SELECT COUNT(*) " + _CANONICAL + self._where + " AND p.profile_id <= ?",
                                 (upto, upto, cursor))
        self.conn.commit()
        return int(value or 0)

    def canonical_page(self, upto: int, after: str, limit: int) -> list[str]:
        rows = self.conn.fetchall("SELECT p.profile_id " + _CANONICAL + self._where + " AND p.profile_id > ? "
                                  "ORDER BY p.profile_id LIMIT ?", (upto, upto, after, limit))
        self.conn.commit()
        return [str(r[0]) for r in rows]

    def save_cursor(self, conn: Connection, keys: set[str], cursor: str) -> None:
        if self.partition.whole:
            conn.executemany("UPDATE computations SET backfill_cursor = ? WHERE key = ?", [(cursor, k) for k in keys])

    def _fingerprint(self, keys: set[str]) -> int:
        """Which backfill a partition's done-marker is for: the keys with their versions."""
        marks = ",".join("?" * len(keys))
        rows = self.conn.fetchall("SELECT key, definition_hash, created_at_ms FROM computations "
                                  f"WHERE key IN ({marks}) ORDER BY key", sorted(keys))
        text = "|".join(f"{k}:{h}:{c}" for k, h, c in rows)
        return int(hashlib.sha1(text.encode()).hexdigest()[:15], 16)

    def partition_done(self, keys: set[str]) -> bool:
        """Whether this partition already backfilled exactly these keys (others may not have)."""
        if self.partition.whole:
            return False
        done = Checkpoints.get(self.conn, self._marker(self.partition)) == self._fingerprint(keys)
        self.conn.commit()
        return done

    @staticmethod
    def _marker(partition: Partition) -> str:
        return partition.events_consumer + ".backfill"

    def finish_backfill(self, keys: set[str]) -> None:
        with self.conn.transaction():
            serialise_writers(self.conn)
            if not self.partition.whole:
                mark = self._fingerprint(keys)
                Checkpoints.set(self.conn, self._marker(self.partition), mark)
                if any(Checkpoints.get(self.conn, self._marker(p)) != mark
                       for p in all_partitions(self.partition.count)):
                    return  # the last partition to finish moves the status on
            self.conn.executemany("UPDATE computations SET status = 'Computing', backfill_cursor = NULL WHERE key = ? "
                                  "AND status = 'Backfilling'", [(k,) for k in keys])
