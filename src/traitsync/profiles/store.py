"""Read side of the profile store (what the Profile API serves) and identifier deletion.

The identity worker writes these tables; this module only reads them, except
``delete_external_id`` (segment-spec 2.8), which edits the graph under the worker's lock and
bumps the graph generation so the worker drops its cache.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from traitsync.identity.cache import bump_generation
from traitsync.identity.worker import WORKER_LOCK_KEY, WORKER_LOCK_SQL
from traitsync.store.database import Connection, Database


@dataclass(frozen=True)
class Trait:
    key: str
    value: Any
    source_id: str | None
    updated_at_ms: int | None


@dataclass(frozen=True)
class ExternalId:
    id_type: str
    value: str
    collection: str
    source_id: str
    created_at_ms: int
    first_message_id: str
    event_offset: int


@dataclass(frozen=True)
class ProfileEvent:
    offset: int
    profile_id: str | None
    timestamp_ms: int
    external_ids: list[list[str]]
    body: dict[str, Any]
    source_id: str


class DeleteRefused(Exception):
    """Why an identifier deletion was refused, in the API's status/code terms."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _in(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


#: SQLite memory-maps up to this much of the file for reads (it caps the figure at its build
#: limit, 2 GB by default).
MMAP_BYTES = 1 << 40


class ProfileStore:
    """Queries over one database, on the calling thread's connection."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._mapped: weakref.WeakSet[Connection] = weakref.WeakSet()

    def _conn(self) -> Connection:
        """The thread's connection; on SQLite, memory-mapped once for reads.

        The Profile API reads a few random pages per lookup from a store much larger than
        SQLite's page cache; through mmap they cost a memory access instead of a ``pread``
        system call each (the find+traits query of ``/traits`` on 1M profiles: 168 -> 94 us).
        Reads only: SQLite still writes through the file, so nothing else changes.
        """
        conn = self.db.thread_connection()
        if conn.dialect == "sqlite" and conn not in self._mapped:
            conn.execute(f"PRAGMA mmap_size={MMAP_BYTES}").fetchall()
            self._mapped.add(conn)
        return conn

    def _end(self, conn: Connection) -> None:
        if conn.dialect == "postgresql":
            conn.commit()

    def find(self, collection: str, id_type: str, value: str) -> str | None:
        """The canonical profile holding an identifier (identifiers always point at canonical ids)."""
        conn = self._conn()
        try:
            found = conn.scalar("SELECT profile_id FROM profile_external_ids WHERE id_type = ? AND value = ? "
                                "AND collection = ?", (id_type, value, collection))
            return None if found is None else str(found)
        finally:
            self._end(conn)

    def members(self, profile_id: str) -> list[str]:
        conn = self._conn()
        try:
            rows = conn.fetchall("SELECT profile_id FROM profiles WHERE merged_into = ?", (profile_id,))
            return [profile_id, *(str(r[0]) for r in rows)]
        finally:
            self._end(conn)

    def traits(self, profile_id: str) -> list[Trait]:
        conn = self._conn()
        try:
            rows = conn.fetchall("SELECT key, value, source_id, updated_at_ms FROM profile_traits WHERE "
                                 "profile_id = ? AND value IS NOT NULL ORDER BY key", (profile_id,))
        finally:
            self._end(conn)
        return [Trait(r[0], orjson.loads(r[1]), r[2], int(r[3])) for r in rows]

    def find_with_traits(self, collection: str, id_type: str,
                         value: str) -> tuple[str, list[tuple[str, str, str | None, int]]] | None:
        """``find`` plus that profile's traits as stored, in no particular order, in one statement.

        Traits are (key, value as JSON text, source_id, updated_at_ms). For ``/traits``, the
        Profile API's hot route: one query instead of two (and one snapshot), and the JSON text
        goes into the answer as is instead of being decoded only to be encoded again.
        """
        conn = self._conn()
        try:
            rows = conn.fetchall(
                "SELECT x.profile_id, t.key, t.value, t.source_id, t.updated_at_ms FROM profile_external_ids x "
                "LEFT JOIN profile_traits t ON t.profile_id = x.profile_id AND t.value IS NOT NULL "
                "WHERE x.id_type = ? AND x.value = ? AND x.collection = ?", (id_type, value, collection))
        finally:
            self._end(conn)
        if not rows:
            return None
        return str(rows[0][0]), [(r[1], r[2], r[3], int(r[4])) for r in rows if r[1] is not None]

    def external_ids(self, profile_id: str, types: Sequence[str] | None = None) -> list[ExternalId]:
        conn = self._conn()
        sql = ("SELECT id_type, value, collection, source_id, created_at_ms, first_message_id, event_offset "
               "FROM profile_external_ids WHERE profile_id = ?")
        params: list[Any] = [profile_id]
        if types:
            sql += f" AND id_type IN ({_in(types)})"
            params.extend(types)
        try:
            rows = conn.fetchall(sql + " ORDER BY event_offset, id_type, value", params)
        finally:
            self._end(conn)
        return [ExternalId(r[0], r[1], r[2], r[3], int(r[4]), r[5], int(r[6])) for r in rows]

    def events(self, profile_ids: Sequence[str], collection: str, *, start_ms: int | None, end_ms: int | None,
               include: Sequence[str] | None, exclude: Sequence[str] | None, descending: bool,
               after: tuple[int, int] | None, limit: int) -> list[ProfileEvent]:
        """Events of a profile (and of profiles merged into it), in time order, after a cursor."""
        column = "pe.profile_id" if collection == "users" else "pe.account_id"
        where = [f"{column} IN ({_in(profile_ids)})"]
        params: list[Any] = list(profile_ids)
        if start_ms is not None:
            where.append("pe.timestamp_ms >= ?")
            params.append(start_ms)
        if end_ms is not None:
            where.append("pe.timestamp_ms <= ?")
            params.append(end_ms)
        if include:
            where.append(f"pe.event IN ({_in(include)})")
            params.extend(include)
        if exclude:
            where.append(f"(pe.event IS NULL OR pe.event NOT IN ({_in(exclude)}))")
            params.extend(exclude)
        op, order = ("<", "DESC") if descending else (">", "ASC")
        if after is not None:
            where.append(f'(pe.timestamp_ms {op} ? OR (pe.timestamp_ms = ? AND pe."offset" {op} ?))')
            params.extend([after[0], after[0], after[1]])
        sql = ('SELECT pe."offset", pe.profile_id, pe.timestamp_ms, pe.external_ids, e.body, e.source_id '
               'FROM profile_events pe JOIN events e ON e."offset" = pe."offset" WHERE '
               + " AND ".join(where) + f' ORDER BY pe.timestamp_ms {order}, pe."offset" {order} LIMIT ?')
        params.append(limit)
        conn = self._conn()
        try:
            rows = conn.fetchall(sql, params)
        finally:
            self._end(conn)
        return [ProfileEvent(int(r[0]), r[1], int(r[2]), orjson.loads(r[3]), orjson.loads(r[4]), r[5])
                for r in rows]

    def linked(self, profile_id: str, collection: str, limit: int) -> list[tuple[str, list[ExternalId]]]:
        """Profiles linked to this one (users -> accounts, accounts -> users) with their identifiers."""
        own, other = ("user_profile_id", "account_profile_id") if collection == "users" else \
            ("account_profile_id", "user_profile_id")
        conn = self._conn()
        try:
            rows = conn.fetchall(f"SELECT {other} FROM profile_links WHERE {own} = ? ORDER BY created_at_ms, "
                                 f"{other} LIMIT ?", (profile_id, limit))
        finally:
            self._end(conn)
        out: list[tuple[str, list[ExternalId]]] = []
        seen: set[str] = set()
        for (pid,) in rows:
            canonical = self._canonical(str(pid))
            if canonical in seen:
                continue
            seen.add(canonical)
            out.append((canonical, self.external_ids(canonical)))
        return out

    def _canonical(self, profile_id: str) -> str:
        conn = self._conn()
        try:
            merged = conn.scalar("SELECT merged_into FROM profiles WHERE profile_id = ?", (profile_id,))
        finally:
            self._end(conn)
        return str(merged) if merged else profile_id

    def metadata(self, profile_id: str) -> dict[str, Any] | None:
        conn = self._conn()
        try:
            row = conn.fetchone("SELECT created_at_ms, updated_at_ms, first_message_id, first_source_id, "
                                "last_message_id, last_source_id FROM profiles WHERE profile_id = ?", (profile_id,))
            if row is None:
                return None
            # The metadata of a merged profile spans everything merged into it.
            span = conn.fetchone("SELECT MIN(created_at_ms), MAX(updated_at_ms) FROM profiles WHERE "
                                 "profile_id = ? OR merged_into = ?", (profile_id, profile_id))
        finally:
            self._end(conn)
        assert span is not None
        return {"created_at_ms": int(span[0]), "updated_at_ms": int(span[1]), "first_message_id": row[2],
                "first_source_id": row[3], "last_message_id": row[4], "last_source_id": row[5]}

    def delete_external_id(self, lookup_value: str, id_type: str, value: str) -> None:
        """Remove one identifier from the profile found by ``user_id:lookup_value`` (segment-spec 2.8)."""
        if id_type == "group_id":
            raise DeleteRefused(400, "unsupported_eid_type", "group_id identifiers cannot be deleted.")
        if id_type == "user_id" and value == lookup_value:
            raise DeleteRefused(400, "bad_request", "The identifier to delete is the lookup identifier.")
        conn = self.db.connect()
        try:
            with conn.transaction():
                if conn.dialect == "postgresql":
                    conn.execute(WORKER_LOCK_SQL, (WORKER_LOCK_KEY,))
                pid = conn.scalar("SELECT profile_id FROM profile_external_ids WHERE id_type = 'user_id' AND "
                                  "value = ? AND collection = 'users'", (lookup_value,))
                if pid is None:
                    raise DeleteRefused(404, "not_found", "Profile was not found.")
                row = conn.fetchone("SELECT profile_id FROM profile_external_ids WHERE id_type = ? AND value = ? "
                                    "AND collection = 'users'", (id_type, value))
                if row is None or row[0] != pid:
                    raise DeleteRefused(404, "eid_not_found", "The identifier is not on this profile.")
                if id_type == "user_id":
                    count = conn.scalar("SELECT COUNT(*) FROM profile_external_ids WHERE profile_id = ? AND "
                                        "id_type = 'user_id'", (pid,))
                    if int(count) <= 1:
                        raise DeleteRefused(400, "unsupported_eid_type", "The last user_id cannot be deleted.")
                conn.execute("DELETE FROM profile_external_ids WHERE id_type = ? AND value = ? AND "
                             "collection = 'users'", (id_type, value))
                now = int(time.time() * 1000)
                conn.execute(
                    "INSERT INTO identity_audit (event_offset, message_id, source_id, at_ms, action, category, "
                    "collection, profile_id, other_profile_id, id_type, value, detail) VALUES "
                    "(NULL, NULL, NULL, ?, 'identifier_deleted', NULL, 'users', ?, NULL, ?, ?, ?)",
                    (now, pid, id_type, value, "deleted through the Profile API (external_ids/delete)"))
                conn.execute(
                    "INSERT INTO profile_changes (kind, collection, profile_id, other_profile_id, id_type, value, "
                    "trait_keys, event_offset, message_id, at_ms) VALUES ('identifier_removed', 'users', ?, NULL, "
                    "?, ?, NULL, NULL, NULL, ?)", (pid, id_type, value, now))
                bump_generation(conn)
        finally:
            conn.close()
