"""Carry out a deletion: send the profile's audience exits, then remove everything about it.

Two steps, each one transaction, so a crash between them resumes where it stopped:

1. **begin** (``pending -> exiting``): find the profile holding the identifier and the profiles
   merged into it; drop their queued, unsent outbox rows; for each audience the profile is in,
   append an exit to ``computation_results`` (old ``true``, new ``false``), so activation sends
   the destinations their usual "Audience Exited" while the identifiers are still there to
   address it; and forget the engine's state, so no timer re-enters the profile.
2. **finish** (``exiting -> done``), once activation has read past those exits and no outbox row
   of the profile is still open: delete its events, identifiers, traits, links,
   computed values and results, engine state, destination snapshots, outbox rows and attempts,
   and the identity history naming it; bump the identity graph's generation so every identity
   worker drops its cache. The regulation keeps only the identifier's digest.

List destinations learn of the exit at their next scheduled sync, which removes every
identifier the vendor list holds for the profile; those list rows go when the vendor confirms.
With ``send_exits: false`` the list rows are deleted at once and nothing is sent.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from traitsync.identity.cache import bump_generation
from traitsync.log.event_log import Checkpoints
from traitsync.privacy.regulations import DONE, EXITING, Regulation
from traitsync.store.database import Connection

#: activation's checkpoint on computation_results (``activation.worker.RESULTS_CONSUMER``).
ACTIVATION_RESULTS = "activation.results"
EXIT_CAUSE = "privacy_delete"


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def profile_family(conn: Connection, id_type: str, value: str) -> list[str]:
    """The profile holding the identifier plus every profile merged into it (empty: none)."""
    pid = conn.scalar("SELECT profile_id FROM profile_external_ids WHERE id_type = ? AND value = ? AND collection = ?",
                      (id_type, value, "users"))
    if pid is None:
        return []
    family = [str(pid)]
    frontier = [str(pid)]
    while frontier:
        rows = conn.fetchall(f"SELECT profile_id FROM profiles WHERE merged_into IN ({_marks(frontier)})",
                             tuple(frontier))
        frontier = [str(r[0]) for r in rows if str(r[0]) not in family]
        family.extend(frontier)
    return family


def begin(conn: Connection, reg: Regulation, *, send_exits: bool, now_ms: int) -> str:
    """Step 1; returns a one-line summary for the regulation's ``detail``."""
    assert reg.value is not None
    pids = profile_family(conn, reg.id_type, reg.value)
    if not pids:
        conn.execute("UPDATE privacy_regulations SET status = ?, value = NULL, finished_at_ms = ?, detail = ?"
                     " WHERE id = ?", (DONE, now_ms, "no profile holds this identifier", reg.id))
        return "no profile holds this identifier"
    marks = _marks(pids)
    open_ids = [int(r[0]) for r in conn.fetchall(
        f"SELECT id FROM delivery_outbox WHERE order_key IN ({marks}) AND state IN ('pending', 'retry_wait')",
        tuple(pids))]
    _delete_outbox(conn, open_ids)
    exits = 0
    exit_offset = 0
    if send_exits:
        members = conn.fetchall(
            f"SELECT v.computation_key, c.id, MAX(v.version) FROM computed_values v JOIN computations c"
            f" ON c.key = v.computation_key WHERE v.profile_id IN ({marks}) AND c.class = 'audience'"
            f" AND v.value = 'true' GROUP BY v.computation_key, c.id", tuple(pids))
        for key, comp_id, version in members:
            conn.execute("INSERT INTO computation_results (computation_key, computation_id, computation_class,"
                         " profile_id, old_value, new_value, version, as_of_ms, cause, at_ms) VALUES"
                         " (?, ?, 'audience', ?, 'true', 'false', ?, ?, ?, ?)",
                         (key, comp_id, pids[0], int(version) + 1, now_ms, EXIT_CAUSE, now_ms))
            exits += 1
        if exits:
            exit_offset = int(conn.scalar('SELECT MAX("offset") FROM computation_results') or 0)
            conn.execute(f"UPDATE computed_values SET value = 'false', version = version + 1 WHERE profile_id IN"
                         f" ({marks}) AND value = 'true'", tuple(pids))
    for table in ("compute_profile_state", "compute_profile_due"):
        conn.execute(f"DELETE FROM {table} WHERE profile_id IN ({marks})", tuple(pids))
    detail = f"{len(pids)} profile(s); {len(open_ids)} unsent message(s) dropped; {exits} audience exit(s) sent"
    conn.execute("UPDATE privacy_regulations SET status = ?, profile_ids = ?, exit_offset = ?, detail = ? WHERE id = ?",
                 (EXITING, json.dumps(pids), exit_offset, detail, reg.id))
    return detail


def ready(conn: Connection, pids: list[str], exit_offset: int, *, activation_runs: bool) -> bool:
    """Step 2 may run: activation has read the exits and the profile has no open outbox row."""
    if activation_runs and exit_offset and Checkpoints.get(conn, ACTIVATION_RESULTS) < exit_offset:
        return False
    open_rows = conn.scalar(f"SELECT COUNT(*) FROM delivery_outbox WHERE order_key IN ({_marks(pids)})"
                            " AND terminal = ?", (*pids, False))
    return int(open_rows or 0) == 0


def finish(conn: Connection, reg: Regulation, pids: list[str], *, send_exits: bool, now_ms: int) -> int:
    """Step 2; returns how many event log rows were deleted."""
    marks = _marks(pids)
    params = tuple(pids)
    events = conn.execute(f'DELETE FROM events WHERE "offset" IN (SELECT "offset" FROM profile_events'
                          f" WHERE profile_id IN ({marks}) OR account_id IN ({marks}))", params + params)
    deleted = max(int(getattr(events, "rowcount", 0) or 0), 0)
    _delete_outbox(conn, [int(r[0]) for r in conn.fetchall(
        f"SELECT id FROM delivery_outbox WHERE order_key IN ({marks})", params)])
    single = {
        "profile_events": "profile_id", "profile_external_ids": "profile_id", "profile_traits": "profile_id",
        "computed_values": "profile_id", "computation_results": "profile_id",
        "activation_snapshots": "profile_id", "identity_audit": "profile_id", "profiles": "profile_id",
    }
    for table, column in single.items():
        conn.execute(f"DELETE FROM {table} WHERE {column} IN ({marks})", params)
    accounts = [str(r[0]) for r in conn.fetchall(
        f"SELECT DISTINCT account_profile_id FROM profile_links WHERE user_profile_id IN ({marks}) "
        "ORDER BY account_profile_id", params)]
    # The accounts the person belonged to lose a user: an "unlinked" change without the user's id
    # tells the realtime engine to re-read these accounts' users from the store. Written before the
    # person's changes are deleted, so that (on SQLite) it cannot reuse one of their offsets.
    conn.executemany("INSERT INTO profile_changes (kind, collection, profile_id, other_profile_id, id_type, value, "
                     "trait_keys, event_offset, message_id, at_ms) VALUES ('unlinked', 'accounts', ?, NULL, NULL, "
                     "NULL, NULL, NULL, NULL, ?)", [(acc, now_ms) for acc in accounts])
    for table, first, second in (("profile_links", "user_profile_id", "account_profile_id"),
                                 ("profile_changes", "profile_id", "other_profile_id"),
                                 ("identity_merges", "survivor_id", "absorbed_id")):
        conn.execute(f"DELETE FROM {table} WHERE {first} IN ({marks}) OR {second} IN ({marks})", params + params)
    if not send_exits:
        conn.execute(f"DELETE FROM activation_list_members WHERE profile_id IN ({marks})", params)
    bump_generation(conn)
    conn.execute("UPDATE privacy_regulations SET status = ?, value = NULL, finished_at_ms = ?,"
                 " detail = COALESCE(detail, '') || ? WHERE id = ?",
                 (DONE, now_ms, f"; {deleted} event(s) deleted", reg.id))
    return deleted


def _delete_outbox(conn: Connection, ids: list[int]) -> None:
    for start in range(0, len(ids), 400):
        part = ids[start:start + 400]
        conn.execute(f"DELETE FROM delivery_attempts WHERE outbox_id IN ({_marks(part)})", tuple(part))
        conn.execute(f"DELETE FROM delivery_outbox WHERE id IN ({_marks(part)})", tuple(part))
