"""Management tokens: named, with a role, kept only as SHA-256 digests.

SHA-256 rather than a password hash (argon2): tokens are 256-bit random strings made by
``traitsync tokens create``, so there is nothing to guess and no dictionary to slow down, while
every management request must check one; a slow hash would add tens of milliseconds to each.

Tokens come from two places: ``management_api`` in traitsync.yaml (a restart applies changes)
and the ``management_tokens`` table (``traitsync tokens create|revoke``), which every process
re-reads at most every ``REFRESH_SECONDS``, so a rotated token works, and a revoked one stops
working, without a restart.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from dataclasses import dataclass

from traitsync.config.models import ManagementApiConfig
from traitsync.store.database import Database

REFRESH_SECONDS = 1.0
ROLES = ("read-only", "admin")


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "tsm_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Grant:
    """Who a valid token belongs to: its name (recorded as who asked) and its role."""

    name: str
    role: str


class TokenDirectory:
    """Digest -> grant, from the config and from the store."""

    def __init__(self, config: ManagementApiConfig | None, db: Database | None) -> None:
        self._static: dict[str, Grant] = {}
        if config is not None:
            if config.token is not None:
                self._static[token_digest(config.token.get_secret_value())] = Grant("default", "admin")
            for entry in config.tokens:
                digest = entry.token_sha256 or (token_digest(entry.token.get_secret_value()) if entry.token else None)
                if digest is not None:
                    self._static[digest] = Grant(entry.name, entry.role)
        self.db = db
        self._stored: dict[str, Grant] = {}
        self._loaded_at = 0.0
        self._lock = threading.Lock()

    def _refresh(self) -> None:
        if self.db is None or time.monotonic() - self._loaded_at < REFRESH_SECONDS:
            return
        with self._lock:
            if time.monotonic() - self._loaded_at < REFRESH_SECONDS:
                return
            conn = self.db.connect()
            try:
                rows = conn.fetchall("SELECT token_sha256, name, role FROM management_tokens"
                                     " WHERE revoked_at_ms IS NULL")
                conn.commit()
            finally:
                conn.close()
            self._stored = {str(d): Grant(str(n), str(r)) for d, n, r in rows}
            self._loaded_at = time.monotonic()

    def any(self) -> bool:
        self._refresh()
        return bool(self._static or self._stored)

    def grant(self, token: str) -> Grant | None:
        self._refresh()
        digest = token_digest(token)
        return self._static.get(digest) or self._stored.get(digest)


def create_token(db: Database, name: str, role: str) -> str:
    """Store a new token (replacing an earlier one of that name) and return it, the only time it is shown."""
    token = new_token()
    conn = db.connect()
    try:
        with conn.transaction():
            conn.execute("DELETE FROM management_tokens WHERE name = ?", (name,))
            conn.execute("INSERT INTO management_tokens (name, role, token_sha256, created_at_ms) VALUES (?, ?, ?, ?)",
                         (name, role, token_digest(token), int(time.time() * 1000)))
    finally:
        conn.close()
    return token


def revoke_token(db: Database, name: str) -> bool:
    conn = db.connect()
    try:
        with conn.transaction():
            cur = conn.execute("UPDATE management_tokens SET revoked_at_ms = ? WHERE name = ?"
                               " AND revoked_at_ms IS NULL", (int(time.time() * 1000), name))
            return bool(cur.rowcount)
    finally:
        conn.close()


def list_tokens(db: Database) -> list[tuple[str, str, int, int | None]]:
    conn = db.connect()
    try:
        rows = conn.fetchall("SELECT name, role, created_at_ms, revoked_at_ms FROM management_tokens ORDER BY name")
        conn.commit()
    finally:
        conn.close()
    return [(str(n), str(r), int(c), None if v is None else int(v)) for n, r, c, v in rows]
