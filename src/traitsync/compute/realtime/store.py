"""The engine's reads and writes: profile context, resolved events, and one transaction's output.

Reads are batched per chunk (one query for many profiles) because the engine's cost is
dominated by round trips; writes are collected in :class:`Output` and applied together with
the checkpoints, so a crash replays exactly the unsaved chunk.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from traitsync.compute.realtime.state import ProfileState
from traitsync.spec.event import StoredEvent
from traitsync.store.database import Connection

CONSUMER = "realtime"
CHANGES_CONSUMER = "realtime.changes"
_CHUNK = 500
#: Transaction-level advisory lock serialising the engines' shared writes (see ``serialise_writers``).
WRITERS_LOCK_KEY = 7352020
WRITERS_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext(current_schema()), ?)"

_EVENT_COLUMNS = ('SELECT pe."offset", pe.profile_id, e.message_id, e.source_id, e.type, e.event, e.timestamp_ms, '
                  "e.received_at_ms, e.body FROM profile_events pe JOIN events e ON e.\"offset\" = pe.\"offset\" ")


def _in(values: Sequence[Any]) -> str:
    return ",".join("?" * len(values))


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i:i + _CHUNK]


def dumps(value: Any) -> str | None:
    return None if value is None else orjson.dumps(value).decode()


def serialise_writers(conn: Connection) -> None:
    """Make this transaction's shared writes commit one engine transaction at a time (PostgreSQL).

    Several engines insert into ``computation_results``, which activation reads by offset with a
    checkpoint ("offset > after"). Sequence values are handed out when a row is inserted, not
    when it commits, so without this a row with a lower offset could commit after a higher one
    had already been read, and be skipped forever. Taking one transaction-level lock just
    before the results are inserted (at the very end of the transaction, held until commit)
    means any offset a reader sees was allocated after every earlier holder committed. We chose
    this over reading only below ``pg_snapshot_xmin`` because it fixes the order at the source
    for every reader (activation, the results API, tools) instead of in each of them, and the
    lock is held only for the last few statements and the commit while the evaluation, which
    is most of a transaction, still runs in parallel.

    The same lock also orders the other rows every engine shares (``computations`` counters and
    status, the aggregate checkpoints), so engines never deadlock on them. SQLite has a single
    writer: nothing to do.
    """
    if conn.dialect == "postgresql":
        conn.execute(WRITERS_LOCK_SQL, (WRITERS_LOCK_KEY,))


@dataclass
class ResolvedEvent:
    """An event with the profile identity gave it (canonical as of its own offset)."""

    profile_id: str
    event: StoredEvent


def read_events(conn: Connection, after: int, upto: int, limit: int,
                where: str = "") -> list[tuple[int, ResolvedEvent | None]]:
    """Resolved events in (after, upto], at most ``limit``; unresolved rows come back as None.

    ``where`` narrows them further (a partition's profiles)."""
    rows = conn.fetchall(_EVENT_COLUMNS + 'WHERE pe."offset" > ? AND pe."offset" <= ?' + where
                         + ' ORDER BY pe."offset" LIMIT ?', (after, upto, limit))
    out: list[tuple[int, ResolvedEvent | None]] = []
    for r in rows:
        if r[1] is None:
            out.append((int(r[0]), None))
            continue
        ev = StoredEvent(int(r[0]), r[2], r[3], r[4], r[5], None, None, int(r[6]), int(r[7]), orjson.loads(r[8]))
        out.append((int(r[0]), ResolvedEvent(str(r[1]), ev)))
    return out


def profile_history(conn: Connection, profile_ids: Sequence[str], names: Collection[str],
                    upto: int) -> list[StoredEvent]:
    """Events of these profiles (resolve-time ids) with these names, up to offset ``upto``."""
    if not profile_ids or not names:
        return []
    name_list = sorted(names)
    rows = conn.fetchall(
        _EVENT_COLUMNS + f'WHERE pe.profile_id IN ({_in(profile_ids)}) AND pe.event IN ({_in(name_list)}) '
        'AND pe."offset" <= ? ORDER BY pe.timestamp_ms, pe."offset"', (*profile_ids, *name_list, upto))
    return [StoredEvent(int(r[0]), r[2], r[3], r[4], r[5], None, None, int(r[6]), int(r[7]), orjson.loads(r[8]))
            for r in rows]


def members_as_of(conn: Connection, profile_id: str, upto: int) -> list[str]:
    """The profile and everything merged into it by merges at offsets <= ``upto``."""
    members = [profile_id]
    frontier = [profile_id]
    while frontier:
        rows = conn.fetchall(f"SELECT absorbed_id FROM identity_merges WHERE survivor_id IN ({_in(frontier)}) "
                             "AND event_offset <= ?", (*frontier, upto))
        frontier = [str(r[0]) for r in rows if str(r[0]) not in members]
        members.extend(frontier)
    return members


def load_states(conn: Connection, profile_ids: Sequence[str]) -> dict[str, ProfileState]:
    """Each profile's state document (an empty state for a profile without a row)."""
    out: dict[str, ProfileState] = {}
    for part in _chunks(list(profile_ids)):
        for pid, text in conn.fetchall(
                f"SELECT profile_id, state FROM compute_profile_state WHERE profile_id IN ({_in(part)})", part):
            out[str(pid)] = ProfileState.loads(text)
    for pid in profile_ids:
        if pid not in out:
            out[pid] = ProfileState()
        out[pid].pid = pid
    return out


def load_traits(conn: Connection, profile_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {pid: {} for pid in profile_ids}
    for part in _chunks(list(profile_ids)):
        for pid, key, value in conn.fetchall(
                f"SELECT profile_id, key, value FROM profile_traits WHERE profile_id IN ({_in(part)}) "
                "AND value IS NOT NULL", part):
            out[str(pid)][str(key)] = orjson.loads(value)
    return out


def load_identifiers(conn: Connection, profile_ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """Each profile's identifiers by type (an account's are its ``group_id``)."""
    out: dict[str, dict[str, list[str]]] = {pid: {} for pid in profile_ids}
    users = [p for p in profile_ids if not p.startswith("acc_")]
    accounts = [p for p in profile_ids if p.startswith("acc_")] if len(users) < len(profile_ids) else []
    for collection, pids in (("users", users), ("accounts", accounts)):
        for part in _chunks(pids):
            for pid, id_type, value in conn.fetchall(
                    f"SELECT profile_id, id_type, value FROM profile_external_ids WHERE profile_id IN ({_in(part)}) "
                    "AND collection = ?", (*part, collection)):
                out[str(pid)].setdefault(str(id_type), []).append(str(value))
    return out


def accounts_of(conn: Connection, user_id: str) -> list[str]:
    """The accounts a (canonical) user is linked to, as the store has it now."""
    rows = conn.fetchall("SELECT account_profile_id FROM profile_links WHERE user_profile_id = ?", (user_id,))
    return sorted(str(r[0]) for r in rows)


def members_of(conn: Connection, account_id: str) -> list[str]:
    """The users linked to an account, as the store has it now."""
    rows = conn.fetchall("SELECT user_profile_id FROM profile_links WHERE account_profile_id = ?", (account_id,))
    return sorted(str(r[0]) for r in rows)


def account_page(conn: Connection, upto: int, after: str, limit: int) -> list[str]:
    """Account profiles created by offset ``upto``, by id after ``after`` (a backfill's page)."""
    rows = conn.fetchall("SELECT profile_id FROM profiles WHERE collection = 'accounts' AND created_offset <= ? "
                         "AND profile_id > ? ORDER BY profile_id LIMIT ?", (upto, after, limit))
    return [str(r[0]) for r in rows]


@dataclass
class Output:
    """Everything one transaction writes."""

    #: Profiles whose state changed (None = delete): serialised once at flush however often they changed.
    profiles: dict[str, ProfileState | None] = field(default_factory=dict)
    #: (profile, computation) -> (value as JSON text or None, version, updated_at_ms); None = delete.
    values: dict[tuple[str, str], tuple[str | None, int, int] | None] = field(default_factory=dict)
    results: list[tuple[Any, ...]] = field(default_factory=list)
    size_delta: dict[str, int] = field(default_factory=dict)
    last_change: dict[str, int] = field(default_factory=dict)
    #: The transaction moves the engine's checkpoints.
    moved: bool = False

    def __bool__(self) -> bool:
        return bool(self.profiles or self.values or self.results)

    def flush(self, conn: Connection) -> None:
        """Write everything; the rows shared with other engines last, under ``serialise_writers``."""
        put: list[tuple[str, str]] = []
        gone: list[tuple[str]] = []
        due_put: list[tuple[str, int]] = []
        due_gone: list[tuple[str]] = []
        for pid, prof in self.profiles.items():
            if prof is None:
                gone.append((pid,))
                due_gone.append((pid,))
                continue
            doc, due = prof.dumps()
            put.append((pid, doc))
            if due != prof.stored_due:  # the due row changes only when the profile's earliest due does
                if due is None:
                    due_gone.append((pid,))
                else:
                    due_put.append((pid, due))
                prof.stored_due = due
        if put:
            conn.executemany("INSERT INTO compute_profile_state (profile_id, state) VALUES (?, ?) "
                             "ON CONFLICT (profile_id) DO UPDATE SET state = excluded.state", put)
        if gone:
            conn.executemany("DELETE FROM compute_profile_state WHERE profile_id = ?", gone)
        if due_put:
            conn.executemany("INSERT INTO compute_profile_due (profile_id, due_at_ms) VALUES (?, ?) "
                             "ON CONFLICT (profile_id) DO UPDATE SET due_at_ms = excluded.due_at_ms", due_put)
        if due_gone:
            conn.executemany("DELETE FROM compute_profile_due WHERE profile_id = ?", due_gone)
        val_put = [(p, k, *v) for (p, k), v in self.values.items() if v is not None]
        val_gone = [(p, k) for (p, k), v in self.values.items() if v is None]
        if val_put:
            conn.executemany(
                "INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile_id, computation_key) DO UPDATE SET "
                "value = excluded.value, version = excluded.version, updated_at_ms = excluded.updated_at_ms",
                val_put)
        if val_gone:
            conn.executemany("DELETE FROM computed_values WHERE profile_id = ? AND computation_key = ?", val_gone)
        if not (self.results or self.size_delta or self.last_change):
            return
        serialise_writers(conn)
        if self.results:
            conn.executemany(
                "INSERT INTO computation_results (computation_key, computation_id, computation_class, profile_id, "
                "old_value, new_value, version, as_of_ms, cause, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.results)
        for key, delta in sorted(self.size_delta.items()):
            conn.execute("UPDATE computations SET size = size + ?, last_change_at_ms = ? WHERE key = ?",
                         (delta, self.last_change.get(key, int(time.time() * 1000)), key))
        for key, at in sorted(self.last_change.items()):
            if key not in self.size_delta:
                conn.execute("UPDATE computations SET last_change_at_ms = ? WHERE key = ?", (at, key))

