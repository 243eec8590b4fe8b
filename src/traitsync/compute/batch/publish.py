"""Where batch results go: the live results (at "now") or a point-in-time snapshot (``--as-of``).

Live: the same tables and rows as the realtime engine (``computed_values`` and one
``computation_results`` row per change), so activation diffs and sends them exactly as it does
realtime changes; a run with nothing new writes nothing. Snapshot: ``computation_snapshots``
keyed by the as-of moment, which activation never reads, so a look at the past sends nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any

import orjson

from traitsync.compute.batch.runners import Row
from traitsync.compute.realtime.state import definition_hash
from traitsync.definitions import Definitions, ir
from traitsync.store.database import Connection, Database
from traitsync.store.migrate import migrate

_CHUNK = 500


def _dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


@dataclass
class Published:
    """Per computation key: its size after the run and how many profiles changed value."""

    size: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)


def creation_times(db: Database, definitions: Definitions, keys: Iterable[str], *, register_at_ms: int | None
                   ) -> dict[str, int]:
    """Each definition's creation time (its history rule counts from it), as the realtime engine
    keeps it in ``computations``. With ``register_at_ms``, a definition that is not there yet, or
    whose definition changed, is (re)created at that moment, as the realtime engine would."""
    migrate(db)
    conn = db.connect()
    try:
        with conn.transaction():
            known = {str(r[0]): (str(r[1]), int(r[2])) for r in conn.fetchall(
                "SELECT key, definition_hash, created_at_ms FROM computations")}
            out: dict[str, int] = {}
            for key in keys:
                defn = definitions[key]
                digest = definition_hash(defn)
                row = known.get(key)
                if row is not None and row[0] == digest:
                    out[key] = row[1]
                elif register_at_ms is not None:
                    if row is None:
                        conn.execute("INSERT INTO computations (key, id, class, definition_hash, status, created_at_ms,"
                                     " size, last_change_at_ms, backfill_cursor, error) VALUES (?, ?, ?, ?, 'Live', ?, "
                                     "0, NULL, NULL, NULL)", (key, defn.id, defn.computation_class, digest,
                                                               register_at_ms))
                    else:
                        conn.execute("UPDATE computations SET definition_hash = ?, created_at_ms = ?, error = NULL "
                                     "WHERE key = ?", (digest, register_at_ms, key))
                    out[key] = register_at_ms
        return out
    finally:
        conn.close()


def _same(audience: bool, old: Any, new: Any) -> bool:
    if audience:
        return bool(old) == bool(new)
    return _dumps(old) == _dumps(new)


@dataclass(frozen=True)
class Target:
    """One computation as the results tables name it, and the value a profile gets when it leaves
    the result (False for an audience, None for a trait, every column null for an SQL trait)."""

    key: str
    id: str
    computation_class: str
    audience: bool
    gone: Any = None
    definition_hash: str | None = None


def publish_values(db: Database, target: Target, values: Mapping[str, Any], as_of_ms: int, cause: str,
                   *, conn: Connection | None = None) -> Published:
    """Diff ``values`` (profile -> value; absent = ``target.gone``) against ``computed_values`` and
    write each change as the realtime engine does: the current value and one results row."""
    own = conn is None
    c = conn or db.connect()
    wall = int(time.time() * 1000)
    out = Published()
    try:
        with c.transaction() if own else nullcontext(c):
            if target.definition_hash is not None and c.scalar("SELECT 1 FROM computations WHERE key = ?",
                                                               (target.key,)) is None:
                c.execute("INSERT INTO computations (key, id, class, definition_hash, status, created_at_ms, size, "
                          "last_change_at_ms, backfill_cursor, error) VALUES (?, ?, ?, ?, 'Live', ?, 0, NULL, NULL, "
                          "NULL)", (target.key, target.id, target.computation_class, target.definition_hash, wall))
            current = {str(p): (_loads(v), int(ver)) for p, v, ver in c.fetchall(
                "SELECT profile_id, value, version FROM computed_values WHERE computation_key = ?", (target.key,))}
            results: list[tuple[Any, ...]] = []
            rows: list[tuple[Any, ...]] = []
            for pid in sorted(set(current) | set(values)):
                old, version = current.get(pid, (None, 0))
                if pid not in values and (old is None or _same(target.audience, old, target.gone)):
                    continue
                value = values.get(pid, target.gone)
                if _same(target.audience, old, value):
                    continue
                text = _dumps(value)
                results.append((target.key, target.id, target.computation_class, pid, _dumps(old), text, version + 1,
                                as_of_ms, cause, wall))
                rows.append((pid, target.key, text, version + 1, wall))
            for i in range(0, len(rows), _CHUNK):
                c.executemany(
                    "INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms) "
                    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile_id, computation_key) DO UPDATE SET "
                    "value = excluded.value, version = excluded.version, updated_at_ms = excluded.updated_at_ms",
                    rows[i:i + _CHUNK])
                c.executemany(
                    "INSERT INTO computation_results (computation_key, computation_id, computation_class, "
                    "profile_id, old_value, new_value, version, as_of_ms, cause, at_ms) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", results[i:i + _CHUNK])
            size = sum(1 for v in values.values() if (v is True if target.audience else v is not None))
            c.execute("UPDATE computations SET size = ?, status = 'Live', last_change_at_ms = "
                      "COALESCE(?, last_change_at_ms) WHERE key = ?", (size, wall if results else None, target.key))
            out.size[target.key] = size
            out.changed[target.key] = len(results)
        return out
    finally:
        if own:
            c.close()


def publish_live(db: Database, definitions: Definitions, keys: Sequence[str], rows: Sequence[Row], as_of_ms: int,
                 engine: str) -> Published:
    """Write changed values of ``keys`` as the realtime engine does (one transaction)."""
    new: dict[str, dict[str, Any]] = {k: {} for k in keys}
    for key, pid, value in rows:
        new[key][pid] = value
    out = Published()
    conn = db.connect()
    try:
        with conn.transaction():
            for key in keys:
                defn = definitions[key]
                audience = isinstance(defn, ir.Audience)
                target = Target(key, defn.id, defn.computation_class, audience, False if audience else None)
                done = publish_values(db, target, new[key], as_of_ms, f"batch:{engine}", conn=conn)
                out.size.update(done.size)
                out.changed.update(done.changed)
        return out
    finally:
        conn.close()


def publish_snapshot(db: Database, definitions: Definitions, keys: Sequence[str], rows: Sequence[Row],
                     as_of_ms: int) -> Published:
    """Replace the snapshot of ``keys`` at ``as_of_ms`` (members and non-null values only)."""
    migrate(db)
    wall = int(time.time() * 1000)
    out = Published()
    conn = db.connect()
    try:
        with conn.transaction():
            marks = ",".join("?" * len(keys))
            conn.execute(f"DELETE FROM computation_snapshots WHERE as_of_ms = ? AND computation_key IN ({marks})",
                         (as_of_ms, *keys))
            batch = [(as_of_ms, key, pid, _dumps(value), wall) for key, pid, value in rows
                     if value is not None and value is not False]
            for i in range(0, len(batch), _CHUNK):
                conn.executemany("INSERT INTO computation_snapshots (as_of_ms, computation_key, profile_id, value, "
                                 "computed_at_ms) VALUES (?, ?, ?, ?, ?)", batch[i:i + _CHUNK])
            for key in keys:
                out.size[key] = sum(1 for r in batch if r[1] == key)
        return out
    finally:
        conn.close()


def snapshot_values(db: Database, key: str, as_of_ms: int) -> dict[str, Any]:
    """profile -> value of ``key`` in the snapshot at ``as_of_ms`` (empty if never computed)."""
    conn = db.thread_connection()
    try:
        rows = conn.fetchall("SELECT profile_id, value FROM computation_snapshots WHERE computation_key = ? AND "
                             "as_of_ms = ?", (key, as_of_ms))
    finally:
        if conn.dialect == "postgresql":
            conn.commit()
    return {str(p): _loads(v) for p, v in rows}


def snapshot_moments(db: Database, key: str) -> list[int]:
    conn = db.thread_connection()
    try:
        rows = conn.fetchall("SELECT DISTINCT as_of_ms FROM computation_snapshots WHERE computation_key = ? "
                             "ORDER BY as_of_ms", (key,))
    finally:
        if conn.dialect == "postgresql":
            conn.commit()
    return [int(r[0]) for r in rows]


__all__ = ["Published", "Target", "creation_times", "publish_live", "publish_snapshot", "publish_values",
           "snapshot_moments", "snapshot_values"]
