"""What activation reads of profiles: identifiers to send to, and traits to enrich messages with.

The only queries activation makes against the profile store's tables, kept in one module so a
change of those tables touches one place here.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from traitsync.activation.types import Identifier
from traitsync.store.database import Connection

_CHUNK = 400


def placeholders(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def id_chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ids = sorted(set(values))
    for i in range(0, len(ids), _CHUNK):
        yield ids[i:i + _CHUNK]


def load_identifiers(conn: Connection, profile_ids: Sequence[str]) -> dict[str, list[Identifier]]:
    """Each profile's user identifiers, oldest first (ID Sync's first/last need the order)."""
    out: dict[str, list[Identifier]] = {}
    for part in id_chunks(profile_ids):
        for pid, id_type, value in conn.fetchall(
                "SELECT profile_id, id_type, value FROM profile_external_ids WHERE collection = ?"
                f" AND profile_id IN ({placeholders(part)}) ORDER BY event_offset, created_at_ms",
                ("users", *part)):
            out.setdefault(str(pid), []).append(Identifier(str(id_type), str(value)))
    return out


def load_traits(conn: Connection, profile_ids: Sequence[str], keys: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The named traits of each profile (deleted traits left out)."""
    wanted = sorted(set(keys))
    out: dict[str, dict[str, Any]] = {}
    if not wanted:
        return out
    for part in id_chunks(profile_ids):
        for pid, key, value in conn.fetchall(
                f"SELECT profile_id, key, value FROM profile_traits WHERE profile_id IN ({placeholders(part)})"
                f" AND key IN ({placeholders(wanted)}) AND value IS NOT NULL", (*part, *wanted)):
            out.setdefault(str(pid), {})[str(key)] = json.loads(value)
    return out
