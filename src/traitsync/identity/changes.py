"""The durable stream of profile changes that downstream stages (activation, compute) consume."""

from __future__ import annotations

from dataclasses import dataclass

import orjson

from traitsync.store.database import Database


@dataclass(frozen=True)
class ProfileChange:
    """One change. ``kind``: identifier_added, identifier_removed, merged, traits_changed, linked, unlinked.

    For ``merged``, ``profile_id`` is the survivor and ``other_profile_id`` the absorbed profile.
    For ``linked`` / ``unlinked`` (collection ``accounts``), ``profile_id`` is the account and
    ``other_profile_id`` the user whose link was added or ended.
    """

    offset: int
    kind: str
    collection: str
    profile_id: str
    other_profile_id: str | None
    id_type: str | None
    value: str | None
    trait_keys: tuple[str, ...]
    event_offset: int | None
    message_id: str | None
    at_ms: int


class ProfileChanges:
    """Read the stream in offset order; consumers keep their own checkpoint (``Checkpoints``)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self, after: int, limit: int = 1000) -> list[ProfileChange]:
        conn = self.db.thread_connection()
        rows = conn.fetchall(
            'SELECT "offset", kind, collection, profile_id, other_profile_id, id_type, value, trait_keys, '
            'event_offset, message_id, at_ms FROM profile_changes WHERE "offset" > ? ORDER BY "offset" LIMIT ?',
            (after, limit))
        if conn.dialect == "postgresql":
            conn.commit()
        return [ProfileChange(int(r[0]), r[1], r[2], r[3], r[4], r[5], r[6],
                              tuple(orjson.loads(r[7])) if r[7] else (), r[8], r[9], int(r[10])) for r in rows]

    def head(self) -> int:
        conn = self.db.thread_connection()
        value = conn.scalar('SELECT MAX("offset") FROM profile_changes')
        if conn.dialect == "postgresql":
            conn.commit()
        return int(value or 0)
