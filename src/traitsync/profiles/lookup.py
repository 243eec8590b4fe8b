"""Profile look-ups for people rather than programs: search by a typed-in identifier, and the
identifiers of many profiles at once (a page of audience members by user_id and email).

Search never scans: each id type is a range on the ``(id_type, value, collection)`` primary
key (an exact match, then a prefix), so it stays fast at millions of profiles. The id types
tried are the caller's (the identity rules plus the usual ones), since listing the distinct id
types in the table would itself be a scan.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from traitsync.store.database import Connection, Database

#: Tried when the caller names no id types: what the Tracking API promotes by default.
DEFAULT_ID_TYPES = ("user_id", "email", "anonymous_id", "phone", "ios.idfa", "android.idfa")
#: Sorts after every character a value can hold, so ``[q, q + _HIGH)`` is "starts with q".
_HIGH = "\U0010ffff"


@dataclass(frozen=True)
class Match:
    profile_id: str
    collection: str
    id_type: str
    value: str


def _end(conn: Connection) -> None:
    if conn.dialect == "postgresql":
        conn.commit()


def search(db: Database, query: str, id_types: Iterable[str] = DEFAULT_ID_TYPES, *,
           limit: int = 20) -> list[Match]:
    """Profiles holding an identifier equal to, or starting with, ``query``.

    ``type:value`` searches that id type only (``email:ada@`` finds every ``ada@...``) when
    ``type`` is one of ``id_types``; otherwise the colon is part of the value.
    Exact matches come first; one profile appears once, under its first matching identifier.
    """
    text = query.strip()
    if not text:
        return []
    types = list(dict.fromkeys(id_types))
    head, sep, rest = text.partition(":")
    if sep and rest and head in types:  # "a:b" stays a value unless "a" is a known id type
        types, text = [head], rest
    conn = db.thread_connection()
    found: dict[str, Match] = {}
    try:
        for exact in (True, False):
            for id_type in types:
                if len(found) >= limit:
                    break
                if exact:
                    rows = conn.fetchall("SELECT profile_id, collection, value FROM profile_external_ids "
                                         "WHERE id_type = ? AND value = ?", (id_type, text))
                else:
                    rows = conn.fetchall("SELECT profile_id, collection, value FROM profile_external_ids "
                                         "WHERE id_type = ? AND value >= ? AND value < ? ORDER BY value LIMIT ?",
                                         (id_type, text, text + _HIGH, limit))
                for pid, collection, value in rows:
                    found.setdefault(str(pid), Match(str(pid), str(collection), id_type, str(value)))
    finally:
        _end(conn)
    return list(found.values())[:limit]


def identifiers_of(db: Database, profile_ids: Sequence[str],
                   id_types: Sequence[str] = ("user_id", "email")) -> dict[str, dict[str, list[str]]]:
    """``{profile_id: {id_type: [values]}}`` for a page of profiles, in one query."""
    if not profile_ids:
        return {}
    # Filtered here, not in SQL: with ``id_type IN (...)`` the planner may pick the primary key
    # (id_type first) and walk every identifier of those types instead of a few per profile.
    conn = db.thread_connection()
    try:
        rows = conn.fetchall(
            "SELECT profile_id, id_type, value FROM profile_external_ids WHERE profile_id IN "
            f"({','.join('?' * len(profile_ids))}) ORDER BY event_offset, value", list(profile_ids))
    finally:
        _end(conn)
    wanted = set(id_types)
    out: dict[str, dict[str, list[str]]] = {pid: {} for pid in profile_ids}
    for pid, id_type, value in rows:
        if id_type not in wanted:
            continue
        out.setdefault(str(pid), {}).setdefault(str(id_type), []).append(str(value))
    return out
