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
        context = json.loads(body).get("context")
        consent = context.get("consent") if isinstance(context, dict) else None
        prefs = consent.get("categoryPreferences") if isinstance(consent, dict) else None
        if isinstance(prefs, dict):
            return {str(k): v for k, v in prefs.items() if isinstance(v, bool)}
    return {}


def consented(conn: Connection, profile_id: str, categories: Sequence[str]) -> bool:
    if not categories:
        return True
    prefs = preferences(conn, profile_id)
    return all(prefs.get(c) is True for c in categories)
