"""Writes the resolver produces for one chunk, applied in one transaction with the checkpoint.

Rows are gathered in memory and written in bulk because per-event statements would cost more
than resolution itself: ``executemany`` on SQLite (no round trips, so it is as fast as it gets),
``COPY`` and one-statement array updates on PostgreSQL, where every executemany row would be a
protocol message and a server-side statement. Merges and trait writes keep their log order in
``ops`` so that a chunk of 1,000 events writes exactly what 1,000 single events would.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from traitsync.store.database import Connection

Row = tuple[Any, ...]

_INSERT_PROFILE = (
    "INSERT INTO profiles (profile_id, collection, created_offset, merged_into, merge_count, created_at_ms, "
    "updated_at_ms, first_message_id, first_source_id, last_message_id, last_source_id) "
    "VALUES (?, ?, ?, NULL, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_ID = (
    "INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id, created_at_ms, "
    "first_message_id, event_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_EVENT = (
    'INSERT INTO profile_events ("offset", profile_id, account_id, type, event, timestamp_ms, external_ids) '
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_AUDIT = (
    "INSERT INTO identity_audit (event_offset, message_id, source_id, at_ms, action, category, collection, "
    "profile_id, other_profile_id, id_type, value, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_MERGE = (
    "INSERT INTO identity_merges (survivor_id, absorbed_id, event_offset, message_id, source_id, at_ms) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
_INSERT_CHANGE = (
    "INSERT INTO profile_changes (kind, collection, profile_id, other_profile_id, id_type, value, trait_keys, "
    "event_offset, message_id, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_UPSERT_TRAIT = (
    "INSERT INTO profile_traits (profile_id, key, value, source_id, updated_at_ms, event_offset) "
    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, "
    "source_id = excluded.source_id, updated_at_ms = excluded.updated_at_ms, "
    "event_offset = excluded.event_offset WHERE excluded.updated_at_ms >= profile_traits.updated_at_ms"
)
# On a merge the newest value per key wins; on a tie the survivor keeps its own.
_MERGE_TRAITS = (
    "INSERT INTO profile_traits (profile_id, key, value, source_id, updated_at_ms, event_offset) "
    "SELECT ?, key, value, source_id, updated_at_ms, event_offset FROM profile_traits WHERE profile_id = ? "
    "ON CONFLICT (profile_id, key) DO UPDATE SET value = excluded.value, source_id = excluded.source_id, "
    "updated_at_ms = excluded.updated_at_ms, event_offset = excluded.event_offset "
    "WHERE excluded.updated_at_ms > profile_traits.updated_at_ms"
)
_MERGE_LINKS = (
    "INSERT INTO profile_links (user_profile_id, account_profile_id, source_id, created_at_ms, first_message_id) "
    "SELECT ?, account_profile_id, source_id, created_at_ms, first_message_id FROM profile_links "
    "WHERE user_profile_id = ? ON CONFLICT (user_profile_id, account_profile_id) DO NOTHING"
)
_INSERT_LINK = (
    "INSERT INTO profile_links (user_profile_id, account_profile_id, source_id, created_at_ms, first_message_id) "
    "VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_profile_id, account_profile_id) DO NOTHING"
)
_UPDATE_META = (
    "UPDATE profiles SET updated_at_ms = ?, last_message_id = ?, last_source_id = ?, merge_count = ?, "
    "created_at_ms = ? WHERE profile_id = ?"
)
# PostgreSQL: every metadata update of a chunk in one statement (columns as arrays).
_UPDATE_META_PG = (
    "UPDATE profiles AS p SET updated_at_ms = v.u, last_message_id = v.m, last_source_id = v.s, "
    "merge_count = v.c, created_at_ms = v.a FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::int[], "
    "%s::bigint[], %s::text[]) AS v(u, m, s, c, a, pid) WHERE p.profile_id = v.pid"
)
_COPY_PROFILES = ("COPY profiles (profile_id, collection, created_offset, merge_count, created_at_ms, "
                  "updated_at_ms, first_message_id, first_source_id, last_message_id, last_source_id) FROM STDIN")
_COPY_IDS = ("COPY profile_external_ids (id_type, value, collection, profile_id, source_id, created_at_ms, "
             "first_message_id, event_offset) FROM STDIN")
_COPY_MERGES = ("COPY identity_merges (survivor_id, absorbed_id, event_offset, message_id, source_id, at_ms) "
                "FROM STDIN")
_COPY_EVENTS = ('COPY profile_events ("offset", profile_id, account_id, type, event, timestamp_ms, external_ids) '
                "FROM STDIN")
_COPY_AUDIT = ("COPY identity_audit (event_offset, message_id, source_id, at_ms, action, category, collection, "
               "profile_id, other_profile_id, id_type, value, detail) FROM STDIN")
# Rows are copied in list order, so the serial offsets of the stream keep the log order.
_COPY_CHANGES = ("COPY profile_changes (kind, collection, profile_id, other_profile_id, id_type, value, "
                 "trait_keys, event_offset, message_id, at_ms) FROM STDIN")


@dataclass
class Pending:
    profiles: list[Row] = field(default_factory=list)
    ids: list[Row] = field(default_factory=list)
    events: list[Row] = field(default_factory=list)
    audit: list[Row] = field(default_factory=list)
    changes: list[Row] = field(default_factory=list)
    # ("traits", [rows]), ("merge", (survivor, absorbed)), ("links", [rows]) or ("unlink", (user,
    # account)) in log order (a link ended and made again in one chunk must end up made)
    ops: list[tuple[str, Any]] = field(default_factory=list)
    merges: list[Row] = field(default_factory=list)
    # profile_id -> (updated_at_ms, last_message_id, last_source_id, merge_count, created_at_ms)
    meta: dict[str, Row] = field(default_factory=dict)

    def trait_rows(self, rows: list[Row]) -> None:
        if self.ops and self.ops[-1][0] == "traits":
            self.ops[-1][1].extend(rows)
        else:
            self.ops.append(("traits", list(rows)))

    def merge(self, survivor: str, absorbed: str) -> None:
        self.ops.append(("merge", (survivor, absorbed)))

    def link(self, row: Row) -> None:
        if self.ops and self.ops[-1][0] == "links":
            self.ops[-1][1].append(row)
        else:
            self.ops.append(("links", [row]))

    def unlink(self, user: str, account: str) -> None:
        self.ops.append(("unlink", (user, account)))

    def profile_rows(self) -> tuple[list[Row], list[Row]]:
        """Profile inserts carrying their final metadata, and the metadata updates still needed.

        A profile created in this chunk is inserted with its end-of-chunk metadata instead of
        being inserted and then updated (a second random write of the same row); the merge
        statements in between never touch those columns, so the result is the same.
        """
        meta = dict(self.meta)
        inserts: list[Row] = []
        for pid, collection, offset, created_at, updated_at, first_msg, first_src, last_msg, last_src \
                in self.profiles:
            final = meta.pop(pid, None)
            if final is None:
                inserts.append((pid, collection, offset, 0, created_at, updated_at, first_msg, first_src,
                                last_msg, last_src))
            else:
                updated_at, last_msg, last_src, merge_count, created_at = final
                inserts.append((pid, collection, offset, merge_count, created_at, updated_at, first_msg,
                                first_src, last_msg, last_src))
        return inserts, [(*row, pid) for pid, row in meta.items()]

    def flush(self, conn: Connection) -> None:
        """Apply everything; the caller owns the transaction (and the checkpoint in it)."""
        if conn.dialect == "postgresql":
            self._flush_pg(conn)
            return
        inserts, updates = self.profile_rows()
        if inserts:
            conn.executemany(_INSERT_PROFILE, inserts)
        if self.ids:
            conn.executemany(_INSERT_ID, self.ids)
        self._apply_ops(conn)
        if self.merges:
            conn.executemany(_INSERT_MERGE, self.merges)
        if updates:
            conn.executemany(_UPDATE_META, updates)
        if self.events:
            conn.executemany(_INSERT_EVENT, self.events)
        if self.audit:
            conn.executemany(_INSERT_AUDIT, self.audit)
        if self.changes:
            conn.executemany(_INSERT_CHANGE, self.changes)

    def _apply_ops(self, conn: Connection) -> None:
        """Trait upserts and merges, in log order (a merge compares trait times as of its event)."""
        for kind, payload in self.ops:
            if kind == "traits":
                conn.executemany(_UPSERT_TRAIT, payload)
                continue
            if kind == "links":
                conn.executemany(_INSERT_LINK, payload)
                continue
            if kind == "unlink":
                conn.execute("DELETE FROM profile_links WHERE user_profile_id = ? AND account_profile_id = ?",
                             payload)
                continue
            survivor, absorbed = payload
            conn.execute("UPDATE profile_external_ids SET profile_id = ? WHERE profile_id = ?",
                         (survivor, absorbed))
            conn.execute("UPDATE profiles SET merged_into = ? WHERE profile_id = ? OR merged_into = ?",
                         (survivor, absorbed, absorbed))
            conn.execute(_MERGE_TRAITS, (survivor, absorbed))
            conn.execute("DELETE FROM profile_traits WHERE profile_id = ?", (absorbed,))
            conn.execute(_MERGE_LINKS, (survivor, absorbed))
            conn.execute("DELETE FROM profile_links WHERE user_profile_id = ?", (absorbed,))

    def _flush_pg(self, conn: Connection) -> None:
        """``flush`` for PostgreSQL: the same statements in the same order, in far fewer messages.

        Plain inserts become ``COPY``; the ordered merge/trait statements are sent as one
        pipeline (no round trip per statement); metadata updates are one array statement.
        """
        raw = conn.raw
        inserts, updates = self.profile_rows()
        cur = raw.cursor()
        _copy(cur, _COPY_PROFILES, inserts)
        _copy(cur, _COPY_IDS, self.ids)
        if self.ops:
            with raw.pipeline():
                self._apply_ops(conn)
        _copy(cur, _COPY_MERGES, self.merges)
        if updates:
            columns = list(zip(*updates, strict=True))
            cur.execute(_UPDATE_META_PG, [list(c) for c in columns])
        _copy(cur, _COPY_EVENTS, self.events)
        _copy(cur, _COPY_AUDIT, self.audit)
        _copy(cur, _COPY_CHANGES, self.changes)


def _copy(cur: Any, sql: str, rows: list[Row]) -> None:
    if not rows:
        return
    with cur.copy(sql) as copy:
        write = copy.write_row
        for row in rows:
            write(row)
