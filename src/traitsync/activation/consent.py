"""End-user consent: may a destination receive anything about a profile?

A profile's consent is the ``context.consent.categoryPreferences`` of its newest event (by
timestamp) that carries them, over the profile and every profile merged into it. A destination
that names ``consent_categories`` gets messages only for profiles whose consent says true for
every one of them; no consent at all means no. Read from the resolved events when a message is
planned, so it is exactly as current as the event that caused the message, and only for
destinations that ask (one indexed query per message for them, none for the others).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from traitsync.store.database import Connection

#: Segment's discard reason for a message held back by consent.
FILTERED_BY_CONSENT = "FILTERED_BY_END_USER_CONSENT"
#: Events naming categoryPreferences looked at, newest first, before giving up on a valid one.
_SCAN = 20


def preferences(conn: Connection, profile_id: str) -> dict[str, bool]:
    """The profile's newest category preferences (empty: it never said)."""
    rows = conn.fetchall(
        'SELECT e.body FROM profile_events pe JOIN events e ON e."offset" = pe."offset"'
        " WHERE (pe.profile_id = ? OR pe.profile_id IN (SELECT profile_id FROM profiles WHERE merged_into = ?))"
        " AND e.body LIKE '%categoryPreferences%' ORDER BY pe.timestamp_ms DESC, pe.\"offset\" DESC LIMIT ?",
        (profile_id, profile_id, _SCAN))
    for (body,) in rows:
        prefs = _parse(body)
        if prefs is not None:
            return prefs
    return {}


def _parse(body: str) -> dict[str, bool] | None:
    context = json.loads(body).get("context")
    consent = context.get("consent") if isinstance(context, dict) else None
    prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
    if not isinstance(prefs, dict):
        return None
    return {str(k): v for k, v in prefs.items() if isinstance(v, bool)}


def consenting(conn: Connection, profile_ids: Sequence[str], categories: Sequence[str]) -> set[str]:
    """Of many profiles (a list sync's members), those that consented; a few queries per 400."""
    ids = sorted(set(profile_ids))
    if not categories:
        return set(ids)
    newest: dict[str, tuple[int, int, dict[str, bool]]] = {}
    for start in range(0, len(ids), 400):
        part = ids[start:start + 400]
        marks = ", ".join("?" for _ in part)
        rows = conn.fetchall(
            'SELECT COALESCE(p.merged_into, pe.profile_id), pe.timestamp_ms, pe."offset", e.body'
            ' FROM profile_events pe JOIN events e ON e."offset" = pe."offset"'
            " LEFT JOIN profiles p ON p.profile_id = pe.profile_id"
            f" WHERE (pe.profile_id IN ({marks}) OR p.merged_into IN ({marks}))"
            " AND e.body LIKE '%categoryPreferences%'", (*part, *part))
        for owner, ts, offset, body in rows:
            prefs = _parse(body)
            key = (int(ts), int(offset))
            if prefs is not None and (str(owner) not in newest or key > newest[str(owner)][:2]):
                newest[str(owner)] = (*key, prefs)
    return {pid for pid, (_, _, prefs) in newest.items() if all(prefs.get(c) is True for c in categories)}


def consented(conn: Connection, profile_id: str, categories: Sequence[str]) -> bool:
    if not categories:
        return True
    prefs = preferences(conn, profile_id)
    return all(prefs.get(c) is True for c in categories)
