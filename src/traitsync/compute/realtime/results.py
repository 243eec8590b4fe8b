"""Read side of the engine's output: the results stream, current values, preview, Profile API hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from traitsync.definitions import Definitions, ir
from traitsync.store.database import Connection, Database


@dataclass(frozen=True)
class ComputationResult:
    """One change of value (the activation contract); values are decoded JSON, None = null."""

    offset: int
    computation_key: str
    computation_id: str
    computation_class: str
    profile_id: str
    old_value: Any
    new_value: Any
    version: int
    as_of_ms: int
    cause: str
    at_ms: int


def _loads(text: str | None) -> Any:
    return None if text is None else orjson.loads(text)


def _end(conn: Connection) -> None:
    if conn.dialect == "postgresql":
        conn.commit()


class ComputationResults:
    """Read ``computation_results`` in offset order; consumers keep their own checkpoint."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def read(self, after: int, limit: int = 1000) -> list[ComputationResult]:
        conn = self.db.thread_connection()
        try:
            rows = conn.fetchall(
                'SELECT "offset", computation_key, computation_id, computation_class, profile_id, old_value, '
                'new_value, version, as_of_ms, cause, at_ms FROM computation_results WHERE "offset" > ? '
                'ORDER BY "offset" LIMIT ?', (after, limit))
        finally:
            _end(conn)
        return [ComputationResult(int(r[0]), r[1], r[2], r[3], r[4], _loads(r[5]), _loads(r[6]), int(r[7]),
                                  int(r[8]), r[9], int(r[10])) for r in rows]

    def head(self) -> int:
        conn = self.db.thread_connection()
        try:
            return int(conn.scalar('SELECT MAX("offset") FROM computation_results') or 0)
        finally:
            _end(conn)


def current_values_with_time(db: Database, profile_id: str) -> dict[str, tuple[Any, int]]:
    conn = db.thread_connection()
    try:
        rows = conn.fetchall("SELECT computation_key, value, updated_at_ms FROM computed_values WHERE profile_id = ?",
                             (profile_id,))
    finally:
        _end(conn)
    return {str(k): (_loads(v), int(at)) for k, v, at in rows}


def current_values(db: Database, profile_id: str) -> dict[str, Any]:
    """Every computed value the profile has (an audience left is ``False``; never entered is absent)."""
    return {k: v for k, (v, _) in current_values_with_time(db, profile_id).items()}


def computed_traits_provider(db: Database) -> Callable[[str, str, str | None], dict[str, tuple[Any, int | None]]]:
    """The Profile API hook (``profiles.api.ComputedValues``): class audience | computed_trait | None (both).

    Classes are told apart by the ``computations`` table, so the hook needs no definitions. An
    account profile (``collections/accounts``) has the values of the account-level definitions.
    """

    def provide(collection: str, profile_id: str, klass: str | None) -> dict[str, tuple[Any, int | None]]:
        conn = db.thread_connection()
        try:
            rows = conn.fetchall(
                "SELECT v.computation_key, v.value, v.updated_at_ms, c.class FROM computed_values v "
                "JOIN computations c ON c.key = v.computation_key WHERE v.profile_id = ?", (profile_id,))
        finally:
            _end(conn)
        want = {"audience": "audience", "computed_trait": "trait"}.get(klass or "")
        out: dict[str, tuple[Any, int | None]] = {}
        for key, value, at, cls in rows:
            if want is None or cls == want:
                out[str(key)] = (_loads(value), int(at))
        return out

    return provide


def computation_summaries(db: Database, definitions: Definitions) -> list[dict[str, Any]]:
    conn = db.thread_connection()
    try:
        rows = {str(r[0]): r for r in conn.fetchall(
            "SELECT key, id, class, status, size, last_change_at_ms, created_at_ms, error FROM computations")}
    finally:
        _end(conn)
    out: list[dict[str, Any]] = []
    for key in definitions.order:
        defn = definitions[key]
        r = rows.get(key)
        out.append({"key": key, "id": defn.id, "name": defn.name, "class": defn.computation_class,
                    "status": r[3] if r else "Pending", "size": int(r[4]) if r else 0,
                    "last_change_at_ms": r[5] if r else None, "created_at_ms": r[6] if r else None,
                    "error": r[7] if r else None})
    return out


def preview(db: Database, definitions: Definitions, key: str, sample: int = 10) -> dict[str, Any]:
    """Size and a sample of members (audience) or of profiles with a value (trait)."""
    if key not in definitions:
        raise KeyError(key)
    defn = definitions[key]
    summary = next(s for s in computation_summaries(db, definitions) if s["key"] == key)
    conn = db.thread_connection()
    try:
        if isinstance(defn, ir.Audience):
            rows = conn.fetchall("SELECT profile_id, value FROM computed_values WHERE computation_key = ? AND "
                                 "value = 'true' ORDER BY profile_id LIMIT ?", (key, sample))
        else:
            rows = conn.fetchall("SELECT profile_id, value FROM computed_values WHERE computation_key = ? AND "
                                 "value IS NOT NULL ORDER BY profile_id LIMIT ?", (key, sample))
    finally:
        _end(conn)
    return {**summary, "sample": [{"profile_id": str(p), "value": _loads(v)} for p, v in rows]}
