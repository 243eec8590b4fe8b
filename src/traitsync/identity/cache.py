"""Fill the resolver's cache from the store, a chunk at a time, in a handful of queries."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from traitsync.identity.resolver import Key, ProfileState, Resolver
from traitsync.store.database import Connection

_BATCH = 500


def _chunks(items: list[str], size: int = _BATCH) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def graph_generation(conn: Connection) -> int:
    """Bumped by anything but the worker that edits the graph (identifier deletion)."""
    return int(conn.scalar("SELECT value FROM identity_meta WHERE key = 'generation'") or 0)


def bump_generation(conn: Connection) -> None:
    conn.execute("INSERT INTO identity_meta (key, value) VALUES ('generation', 1) ON CONFLICT (key) "
                 "DO UPDATE SET value = identity_meta.value + 1")


def prefetch(conn: Connection, resolver: Resolver, missing: set[Key]) -> None:
    """Look up unknown identifiers and load every profile they point at (all its identifiers)."""
    by_type: dict[tuple[str, str], list[str]] = defaultdict(list)
    for collection, id_type, value in missing:
        by_type[(collection, id_type)].append(value)
    found: set[str] = set()
    for (collection, id_type), values in by_type.items():
        for part in _chunks(values):
            marks = ",".join("?" * len(part))
            rows = conn.fetchall(
                f"SELECT value, profile_id FROM profile_external_ids WHERE id_type = ? AND collection = ? "
                f"AND value IN ({marks})", (id_type, collection, *part))
            hits = dict(rows)
            for value in part:
                pid = hits.get(value)
                resolver.idmap[(collection, id_type, value)] = pid
                if pid is not None and pid not in resolver.profiles:
                    found.add(pid)
    load_profiles(conn, resolver, found)


def load_profiles(conn: Connection, resolver: Resolver, pids: set[str]) -> None:
    ordered = sorted(pids)
    for part in _chunks(ordered):
        marks = ",".join("?" * len(part))
        for pid, collection, created_offset, created_at, merge_count, updated_at in conn.fetchall(
                "SELECT profile_id, collection, created_offset, created_at_ms, merge_count, updated_at_ms "
                f"FROM profiles WHERE profile_id IN ({marks})", part):
            resolver.profiles[pid] = ProfileState(pid, collection, int(created_offset), int(created_at),
                                                  int(merge_count), int(updated_at))
        for pid, collection, id_type, value, created_at in conn.fetchall(
                "SELECT profile_id, collection, id_type, value, created_at_ms FROM profile_external_ids "
                f"WHERE profile_id IN ({marks})", part):
            resolver.profiles[pid].add(id_type, value, int(created_at))
            resolver.idmap[(collection, id_type, value)] = pid
