"""Suppressed identifiers: events carrying one are refused at ingest with code ``suppressed``.

The list lives in the store (``privacy_suppressions``), written by ``traitsync privacy`` and
``POST /api/v1/regulations`` from any process; each API process keeps a copy in memory that a
background thread refreshes every ``REFRESH_SECONDS``, so a check costs a few hashes and set
lookups and never a query on the request path. The store keeps digests, never the identifiers.

Which identifiers an event carries: ``userId`` (user_id), ``anonymousId`` (anonymous_id),
``traits.email`` or ``context.traits.email`` (email) and every ``context.externalIds`` entry
(its type lower-cased, as identity reads it), plus whatever the ``readers`` given by the
composing layer find: the server passes identity's own extraction, so every identifier type
the identity config knows (custom ids, device ids) is checked, read exactly as identity reads it.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import structlog

from traitsync.store.database import Database

log = structlog.get_logger("traitsync.ingest")

REFRESH_SECONDS = 0.5
SUPPRESSED = "suppressed"
SUPPRESSED_MESSAGE = "an identifier of this message is suppressed by a privacy regulation"
#: Reads (type, value) identifiers from a message body (``identity.extract.identifier_reader``).
IdentifierReader = Callable[[dict[str, Any]], Iterable[tuple[str, str]]]


def identifier_digest(id_type: str, value: str) -> str:
    """What the store keeps of a suppressed identifier."""
    return hashlib.sha256(f"{id_type}:{value}".encode()).hexdigest()


def carried_identifiers(body: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for key, id_type in (("userId", "user_id"), ("anonymousId", "anonymous_id")):
        value = body.get(key)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            yield id_type, str(value)
    raw_context = body.get("context")
    context: dict[str, Any] = raw_context if isinstance(raw_context, dict) else {}
    for traits in (body.get("traits"), context.get("traits")):
        if isinstance(traits, dict) and isinstance(traits.get("email"), str):
            yield "email", traits["email"]
    external = context.get("externalIds")
    if isinstance(external, list):
        for item in external:
            if isinstance(item, dict) and isinstance(item.get("type"), str) and isinstance(item.get("id"), str):
                yield item["type"].lower(), item["id"]


class Suppressions:
    """The suppressed digests, as of the last refresh."""

    def __init__(self, db: Database, *, refresh_seconds: float = REFRESH_SECONDS,
                 readers: Sequence[IdentifierReader] = ()) -> None:
        self.db = db
        self.refresh_seconds = refresh_seconds
        self.readers = tuple(readers)
        self._digests: frozenset[str] = frozenset()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def load(self) -> None:
        conn = self.db.connect()
        try:
            rows = conn.fetchall("SELECT digest FROM privacy_suppressions")
            conn.commit()
        finally:
            conn.close()
        self._digests = frozenset(str(r[0]) for r in rows)

    def start(self) -> None:
        """Load now, then keep refreshing in a daemon thread (storage errors keep the last copy)."""
        self.load()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="traitsync-suppressions", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.refresh_seconds):
            try:
                self.load()
            except Exception as exc:  # storage down: ingest answers 503 anyway; keep the last list
                log.warning("cannot refresh the suppression list", error=str(exc))

    def suppressed(self, body: Any) -> bool:
        if not self._digests or not isinstance(body, dict):
            return False
        digests = self._digests
        if any(identifier_digest(t, v) in digests for t, v in carried_identifiers(body)):
            return True
        return any(identifier_digest(t, v) in digests for read in self.readers for t, v in read(body))
