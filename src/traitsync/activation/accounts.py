"""What activation reads about accounts: group ids, members, and the value a member user holds.

An account-level computation's results are keyed by the account profile (``acc_...``). It
reaches a destination in two ways (segment-spec 5.2): one ``group`` call per account, whose
identifier is the account's ``group_id``; and/or identify/track calls to **every member user**
(every user linked to the account in ``profile_links``, whether or not they performed the event).

Per-member sends are planned as a user-level value that activation *derives* from the user's
current accounts, and diffs against what the destination holds for that user, exactly as for a
user computation. The derived value (``member_value``):

* audience: ``true`` while at least one of the user's accounts is in the audience. A user in
  two matching accounts is a member once; leaving one of them changes nothing;
* computed trait: the value of the user's most recently linked account that has one (the link's
  time, then the account id, break ties), ``null`` when none has.

Deriving from the current state, not from each change, makes every trigger the same question
("what should this user hold now?"), so joins, leaves, moves and merges need no rules of their
own and a repeated trigger sends nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from traitsync.activation.profiles import id_chunks, placeholders
from traitsync.activation.types import GROUP_ID, ComputationKind, Identifier
from traitsync.store.database import Connection

#: ``profile_id`` prefix of account profiles (identity creates them as ``acc_...``).
ACCOUNT_PREFIX = "acc_"


def is_account(profile_id: str | None) -> bool:
    return profile_id is not None and profile_id.startswith(ACCOUNT_PREFIX)


def load_group_ids(conn: Connection, account_ids: Sequence[str]) -> dict[str, list[Identifier]]:
    """Each account's ``group_id`` (one per account: accounts are keyed by it)."""
    out: dict[str, list[Identifier]] = {}
    for part in id_chunks(account_ids):
        for pid, value in conn.fetchall(
                "SELECT profile_id, value FROM profile_external_ids WHERE collection = ? AND id_type = ?"
                f" AND profile_id IN ({placeholders(part)}) ORDER BY event_offset, created_at_ms",
                ("accounts", GROUP_ID, *part)):
            out.setdefault(str(pid), []).append(Identifier(GROUP_ID, str(value)))
    return out


def members_of(conn: Connection, account_ids: Sequence[str]) -> dict[str, list[str]]:
    """The users currently linked to each account, in profile id order."""
    out: dict[str, list[str]] = {}
    for part in id_chunks(account_ids):
        for account, user in conn.fetchall(
                "SELECT account_profile_id, user_profile_id FROM profile_links"
                f" WHERE account_profile_id IN ({placeholders(part)}) ORDER BY account_profile_id, user_profile_id",
                tuple(part)):
            out.setdefault(str(account), []).append(str(user))
    return out


def member_value(kind: ComputationKind, linked: Sequence[tuple[int, str, Any]]) -> Any:
    """The value a member user holds, from ``(link time, account id, account value)`` of each of
    the user's accounts that has a row for the computation (see the module docstring)."""
    if kind == "audience":
        return any(value is True for _, _, value in linked)
    valued = [row for row in linked if row[2] is not None]
    if not valued:
        return None
    return max(valued, key=lambda row: (row[0], row[1]))[2]


def member_values(conn: Connection, users: Sequence[str], computations: Mapping[str, ComputationKind]
                  ) -> dict[tuple[str, str], Any]:
    """``(user, computation key) -> derived value`` for every pair of ``users`` x ``computations``."""
    keys = sorted(computations)
    linked: dict[tuple[str, str], list[tuple[int, str, Any]]] = {}
    if keys:
        for part in id_chunks(users):
            for user, account, at, key, value in conn.fetchall(
                    "SELECT l.user_profile_id, l.account_profile_id, l.created_at_ms, v.computation_key, v.value"
                    " FROM profile_links l JOIN computed_values v ON v.profile_id = l.account_profile_id"
                    f" WHERE l.user_profile_id IN ({placeholders(part)})"
                    f" AND v.computation_key IN ({placeholders(keys)})",
                    (*part, *keys)):
                decoded = None if value is None else orjson.loads(value)
                linked.setdefault((str(user), str(key)), []).append((int(at), str(account), decoded))
    return {(user, key): member_value(computations[key], linked.get((user, key), ()))
            for user in set(users) for key in keys}


def linked_users(conn: Connection, after: int, upto: int) -> list[tuple[int, str, int]]:
    """``(offset, user, timestamp)`` of each resolved ``group`` call in ``(after, upto]``: a user
    linked to an account (a join, or a move under ``accounts: {membership: latest}``)."""
    return [(int(o), str(p), int(t)) for o, p, t in conn.fetchall(
        'SELECT "offset", profile_id, timestamp_ms FROM profile_events WHERE "offset" > ? AND "offset" <= ?'
        " AND account_id IS NOT NULL AND profile_id IS NOT NULL ORDER BY \"offset\"", (after, upto))]


def events_head(conn: Connection) -> int:
    return int(conn.scalar('SELECT MAX("offset") FROM profile_events') or 0)


def link_change_user(kind: str, profile_id: str, other_profile_id: str | None) -> str | None:
    """The user of a ``profile_changes`` row that links or unlinks a user and an account, whatever
    the row's kind is called (identity names the profiles; one is an account, the other not)."""
    if kind in ("identifier_added", "identifier_removed", "merged", "traits_changed") or not other_profile_id:
        return None
    if is_account(other_profile_id) and not is_account(profile_id):
        return profile_id
    if is_account(profile_id) and not is_account(other_profile_id):
        return other_profile_id
    return None


def canonical(conn: Connection, users: Sequence[str]) -> dict[str, str]:
    """Each user's surviving profile (merges move links to the survivor, and identity keeps
    ``merged_into`` pointing at the final survivor)."""
    out = {u: u for u in users}
    for part in id_chunks(users):
        for pid, into in conn.fetchall(
                f"SELECT profile_id, merged_into FROM profiles WHERE profile_id IN ({placeholders(part)})"
                " AND merged_into IS NOT NULL", tuple(part)):
            out[str(pid)] = str(into)
    return out
