"""Recording regulations: who asked for what about which identifier, and when.

Segment's regulation types, named for what they do: ``suppress`` (drop later events carrying
the identifier), ``unsuppress``, ``delete`` (remove the profile and everything derived from
it) and ``suppress_with_delete`` (both). Suppressions take effect when recorded; deletions are
carried out by the privacy worker (``erase.py``), which first sends the profile's audience exits.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from traitsync.errors import TraitsyncError
from traitsync.ingest.suppressions import identifier_digest
from traitsync.store.database import Connection, Database

REGULATION_TYPES = ("delete", "suppress_with_delete", "suppress", "unsuppress")
DELETING = frozenset({"delete", "suppress_with_delete"})
PENDING, EXITING, DONE = "pending", "exiting", "done"


class BadSubject(TraitsyncError):
    code = "bad_subject"


@dataclass(frozen=True)
class Regulation:
    id: int
    regulation_type: str
    id_type: str
    value: str | None
    requested_by: str
    requested_at_ms: int
    status: str
    finished_at_ms: int | None
    detail: str | None

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "regulation_type": self.regulation_type, "subject_type": self.id_type,
                "subject": self.value, "requested_by": self.requested_by, "requested_at_ms": self.requested_at_ms,
                "status": self.status, "finished_at_ms": self.finished_at_ms, "detail": self.detail}


_COLUMNS = ("id, regulation_type, id_type, value, requested_by, requested_at_ms, status, finished_at_ms, detail")


def _row(row: tuple[Any, ...]) -> Regulation:
    return Regulation(int(row[0]), str(row[1]), str(row[2]), row[3], str(row[4]), int(row[5]), str(row[6]),
                      None if row[7] is None else int(row[7]), row[8])


def parse_subject(text: str) -> tuple[str, str]:
    """``TYPE:VALUE`` (``email:ada@example.com``, ``user_id:42``, ``phone:+15550100``) -> (type, value).

    The type is lower-cased: identity stores every identifier type in lower case (custom ids must
    be, ``externalIds`` types are lower-cased), so ``Phone:...`` could otherwise never match.
    The value is kept exactly: identifiers are case-sensitive.
    """
    id_type, sep, value = text.partition(":")
    if not sep or not id_type.strip() or not value:
        raise BadSubject(f"{text!r} is not TYPE:VALUE (for example email:ada@example.com or user_id:42)")
    return id_type.strip().lower(), value


def request(db: Database, regulation_type: str, id_type: str, value: str, requested_by: str,
            *, now_ms: int | None = None) -> Regulation:
    """Record a regulation; a suppression or unsuppression takes effect in the same transaction."""
    if regulation_type not in REGULATION_TYPES:
        raise BadSubject(f"regulation_type must be one of {', '.join(REGULATION_TYPES)}", code="bad_regulation_type")
    at = now_ms if now_ms is not None else int(time.time() * 1000)
    digest = identifier_digest(id_type, value)
    done = regulation_type not in DELETING
    conn = db.connect()
    try:
        with conn.transaction():
            reg_id = _insert(conn, regulation_type, id_type, None if done else value, digest, requested_by, at,
                             DONE if done else PENDING)
            if regulation_type in ("suppress", "suppress_with_delete"):
                conn.execute("INSERT INTO privacy_suppressions (digest, regulation_id, created_at_ms) VALUES (?, ?, ?)"
                             " ON CONFLICT (digest) DO NOTHING", (digest, reg_id, at))
            elif regulation_type == "unsuppress":
                conn.execute("DELETE FROM privacy_suppressions WHERE digest = ?", (digest,))
            row = conn.fetchone(f"SELECT {_COLUMNS} FROM privacy_regulations WHERE id = ?", (reg_id,))
    finally:
        conn.close()
    assert row is not None
    return _row(row)


def _insert(conn: Connection, kind: str, id_type: str, value: str | None, digest: str, by: str, at: int,
            status: str) -> int:
    finished = at if status == DONE else None
    if conn.dialect == "postgresql":
        new_id = conn.scalar(
            "INSERT INTO privacy_regulations (regulation_type, id_type, value, digest, requested_by, requested_at_ms,"
            " status, finished_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (kind, id_type, value, digest, by, at, status, finished))
        return int(new_id)
    cur = conn.execute(
        "INSERT INTO privacy_regulations (regulation_type, id_type, value, digest, requested_by, requested_at_ms,"
        " status, finished_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?)", (kind, id_type, value, digest, by, at, status,
                                                                     finished))
    return int(cur.lastrowid)


def list_regulations(db: Database, limit: int = 100) -> list[Regulation]:
    conn = db.connect()
    try:
        rows = conn.fetchall(f"SELECT {_COLUMNS} FROM privacy_regulations ORDER BY id DESC LIMIT ?", (limit,))
        conn.commit()
    finally:
        conn.close()
    return [_row(r) for r in rows]


def open_regulations(conn: Connection, limit: int = 10) -> list[tuple[Regulation, str | None, int | None]]:
    """Deletions still to carry out, oldest first, with their profile ids (JSON) and exit offset."""
    rows = conn.fetchall(f"SELECT {_COLUMNS}, profile_ids, exit_offset FROM privacy_regulations"
                         " WHERE status IN (?, ?) ORDER BY id LIMIT ?", (PENDING, EXITING, limit))
    return [(_row(r[:9]), r[9], None if r[10] is None else int(r[10])) for r in rows]
