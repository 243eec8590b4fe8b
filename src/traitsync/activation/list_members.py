"""A list sync's adds and removes, computed in SQL and streamed in batches.

The vendor's list is a set of identifiers. What it holds is the confirmed snapshot in
``activation_list_members`` (one row per identifier delivered to it); what it should hold is
every identifier that ID Sync selects for a current member of the audience. Both sides live in
the store, so the difference is two anti-joins the database runs (SQLite or PostgreSQL, the same
SQL), read back in chunks of the vendor's batch size: a sync never holds more than one batch of
members in memory, whatever the size of the audience, and a 1% churn sync sends 1% of the
members. (Planning in Python held the whole audience several times over: 1.0-1.7 GB at
1,000,000 members, see docs/benchmarks.md.)

ID Sync (``ids.select_identifiers``) becomes a predicate on an identifier row ``e``: its type is
selected, and for a ``first``/``last`` strategy no other identifier of the same type on the same
profile came before/after it (ordered as the profile store orders them: event offset, creation
time, then the value to break ties). The pure function stays the reference; a property test holds
the two to each other.

Identity is the identifier, not the (profile, identifier) pair: an email that moved to another
member profile in a merge is still on the list, so it is neither removed nor added again.

**Account audiences** (``account=True``): the list holds the users of the accounts currently in
the audience, through ``profile_links``. A user in two matching accounts is listed once (the
list is a set of identifiers), a user who joins or leaves an account is added or removed at the
next sync, and a user moved to another account leaves this list unless the new account matches
too. The same anti-joins run with "member" meaning "linked to a member account".
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from traitsync.activation.diff import ListMember
from traitsync.activation.ids import DEFAULT_TYPES
from traitsync.activation.types import ANONYMOUS_ID, Identifier, IdStrategy
from traitsync.store.database import Connection

#: A member of an audience in ``computed_values``: the engine stores the JSON ``true``.
_MEMBER = "'true'"
_EARLIER = ("(o.event_offset < e.event_offset OR (o.event_offset = e.event_offset AND"
            " (o.created_at_ms < e.created_at_ms OR (o.created_at_ms = e.created_at_ms AND o.value < e.value))))")
_LATER = _EARLIER.replace("<", ">")


def strategies(id_sync: Mapping[str, IdStrategy] | None, include_anonymous: bool) -> list[tuple[str, IdStrategy]]:
    """The (type, strategy) pairs ``select_identifiers`` applies, in the same order."""
    if id_sync is None:
        types = list(DEFAULT_TYPES) + ([ANONYMOUS_ID] if include_anonymous else [])
        return [(t, "all") for t in types]
    return [(t, s) for t, s in id_sync.items() if t != ANONYMOUS_ID or include_anonymous]


def selected(plan: Sequence[tuple[str, IdStrategy]]) -> tuple[str, list[Any]]:
    """SQL true when identifier row ``e`` is one ID Sync selects for its profile (see the docstring)."""
    if not plan:
        return "1 = 0", []
    parts: list[str] = []
    params: list[Any] = []
    for id_type, strategy in plan:
        if strategy == "all":
            parts.append("e.id_type = ?")
        else:
            order = _EARLIER if strategy == "first" else _LATER
            parts.append("(e.id_type = ? AND NOT EXISTS (SELECT 1 FROM profile_external_ids o WHERE"
                         " o.profile_id = e.profile_id AND o.collection = e.collection AND o.id_type = e.id_type"
                         f" AND o.value <> '' AND {order}))")
        params.append(id_type)
    return "(" + " OR ".join(parts) + ") AND e.value <> ''", params


def _rows_to_members(rows: Sequence[tuple[Any, ...]]) -> list[ListMember]:
    return [ListMember(str(p), Identifier(str(t), str(v))) for p, t, v in rows]


#: Users linked to an account in the audience (the member side of an account audience's list).
_ACCOUNT_USERS = ("computed_values v JOIN profile_links l ON l.account_profile_id = v.profile_id"
                  " JOIN profile_external_ids e ON e.profile_id = l.user_profile_id AND e.collection = 'users'")


def stream_adds(conn: Connection, destination_id: str, computation_id: str, computation_key: str,
                plan: Sequence[tuple[str, IdStrategy]], size: int, *, account: bool = False
                ) -> Iterator[list[ListMember]]:
    """Selected identifiers of current members the list does not hold, ``size`` at a time."""
    predicate, params = selected(plan)
    source = (f"SELECT DISTINCT e.profile_id, e.id_type, e.value FROM {_ACCOUNT_USERS}" if account else
              "SELECT e.profile_id, e.id_type, e.value FROM computed_values v JOIN profile_external_ids e"
              " ON e.profile_id = v.profile_id AND e.collection = 'users'")
    sql = (f"{source} WHERE v.computation_key = ? AND v.value = {_MEMBER} AND {predicate}"
           " AND NOT EXISTS (SELECT 1 FROM activation_list_members h WHERE h.destination_id = ?"
           " AND h.computation_id = ? AND h.id_type = e.id_type AND h.id_value = e.value)"
           " ORDER BY e.id_type, e.value")
    for rows in conn.stream(sql, (computation_key, *params, destination_id, computation_id), size=size):
        yield _rows_to_members(rows)


def stream_removes(conn: Connection, destination_id: str, computation_id: str, computation_key: str,
                   plan: Sequence[tuple[str, IdStrategy]], size: int, *, account: bool = False
                   ) -> Iterator[list[ListMember]]:
    """Identifiers the list holds that no current member's selection includes, ``size`` at a time."""
    predicate, params = selected(plan)
    member = (" profile_external_ids e JOIN profile_links l ON l.user_profile_id = e.profile_id"
              " JOIN computed_values v ON v.profile_id = l.account_profile_id" if account else
              " profile_external_ids e JOIN computed_values v ON v.profile_id = e.profile_id")
    sql = ("SELECT h.profile_id, h.id_type, h.id_value FROM activation_list_members h"
           f" WHERE h.destination_id = ? AND h.computation_id = ? AND NOT EXISTS (SELECT 1 FROM{member}"
           f" AND v.computation_key = ? AND v.value = {_MEMBER}"
           f" WHERE e.id_type = h.id_type AND e.value = h.id_value AND e.collection = 'users' AND {predicate})"
           " ORDER BY h.id_type, h.id_value")
    for rows in conn.stream(sql, (destination_id, computation_id, computation_key, *params), size=size):
        yield _rows_to_members(rows)


def stream_held(conn: Connection, destination_id: str, computation_id: str, size: int
                ) -> Iterator[list[ListMember]]:
    """Every identifier the list holds, ``size`` at a time (the consent pass reads them all)."""
    sql = ("SELECT h.profile_id, h.id_type, h.id_value FROM activation_list_members h"
           " WHERE h.destination_id = ? AND h.computation_id = ? ORDER BY h.id_type, h.id_value")
    for rows in conn.stream(sql, (destination_id, computation_id), size=size):
        yield _rows_to_members(rows)


def count_members(conn: Connection, computation_key: str, plan: Sequence[tuple[str, IdStrategy]], *,
                  account: bool = False) -> int:
    """Current members (users of member accounts, for an account audience) with at least one
    identifier selected for the destination: the audience size a vendor's minimum is held against."""
    predicate, params = selected(plan)
    if account:
        value = conn.scalar("SELECT COUNT(DISTINCT l.user_profile_id) FROM computed_values v JOIN profile_links l"
                            " ON l.account_profile_id = v.profile_id WHERE v.computation_key = ?"
                            f" AND v.value = {_MEMBER}"
                            " AND EXISTS (SELECT 1 FROM profile_external_ids e WHERE e.profile_id = l.user_profile_id"
                            f" AND e.collection = 'users' AND {predicate})", (computation_key, *params))
        return int(value or 0)
    value = conn.scalar("SELECT COUNT(*) FROM computed_values v WHERE v.computation_key = ?"
                        f" AND v.value = {_MEMBER} AND EXISTS (SELECT 1 FROM profile_external_ids e"
                        f" WHERE e.profile_id = v.profile_id AND e.collection = 'users' AND {predicate})",
                        (computation_key, *params))
    return int(value or 0)


def count_held(conn: Connection, destination_id: str, computation_id: str) -> int:
    """Identifiers the vendor's list is confirmed to hold."""
    value = conn.scalar("SELECT COUNT(*) FROM activation_list_members WHERE destination_id = ? AND"
                        " computation_id = ?", (destination_id, computation_id))
    return int(value or 0)
