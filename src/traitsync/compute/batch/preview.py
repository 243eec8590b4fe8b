"""Previews: an audience's or trait's size, sample members, identifier mix and overlap.

Live (the values activation sends) or at a past moment: a stored snapshot from
``traitsync compute --as-of``, else computed on the spot with DuckDB (nothing is written).
Members are shown by the identifiers a user knows (user_id, email, anonymous_id; an account by
its group_id and ``name`` trait), never by internal profile ids.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

import orjson

from traitsync.compute.batch.publish import snapshot_moments, snapshot_values
from traitsync.definitions import Definitions, ir
from traitsync.store.database import Database

#: Identifier types every preview reports a share for (the default eligible ones plus anonymous).
SHARE_TYPES = ("user_id", "email", "anonymous_id", "android.idfa", "ios.idfa")
_CHUNK = 500


def _end(conn: Any) -> None:
    if conn.dialect == "postgresql":
        conn.commit()


def live_values(db: Database, definitions: Definitions, key: str) -> dict[str, Any]:
    """profile -> current value, members only for audiences, non-null values only for traits."""
    audience = isinstance(definitions[key], ir.Audience)
    conn = db.thread_connection()
    try:
        rows = conn.fetchall("SELECT profile_id, value FROM computed_values WHERE computation_key = ? AND "
                             + ("value = 'true'" if audience else "value IS NOT NULL"), (key,))
    finally:
        _end(conn)
    return {str(p): orjson.loads(v) for p, v in rows}


def values_at(db: Database, definitions: Definitions, key: str, as_of_ms: int | None) -> dict[str, Any]:
    """Live values, or the values at ``as_of_ms`` (a stored snapshot, else computed with DuckDB)."""
    if as_of_ms is None:
        return live_values(db, definitions, key)
    if as_of_ms in snapshot_moments(db, key):
        return snapshot_values(db, key, as_of_ms)
    from traitsync.compute.batch.compiler import compile_definitions
    from traitsync.compute.batch.runners import run_duckdb

    rows = run_duckdb(db, compile_definitions(definitions, as_of_ms, keys=[key]))
    return {pid: value for k, pid, value in rows if k == key and value is not None and value is not False}


def identifiers(db: Database, profile_ids: Sequence[str]) -> dict[str, dict[str, list[str]]]:
    """profile -> id type -> values (oldest first)."""
    out: dict[str, dict[str, list[str]]] = {pid: {} for pid in profile_ids}
    conn = db.thread_connection()
    try:
        for i in range(0, len(profile_ids), _CHUNK):
            part = list(profile_ids[i:i + _CHUNK])
            marks = ",".join("?" * len(part))
            for pid, id_type, value in conn.fetchall(
                    f"SELECT profile_id, id_type, value FROM profile_external_ids WHERE profile_id IN ({marks}) "
                    "AND collection = 'users' ORDER BY created_at_ms, value", part):
                out[str(pid)].setdefault(str(id_type), []).append(str(value))
    finally:
        _end(conn)
    return out


def accounts(db: Database, profile_ids: Sequence[str]) -> dict[str, dict[str, str]]:
    """account profile -> its ``group_id`` and ``name`` trait (text; empty when it has none)."""
    out: dict[str, dict[str, str]] = {pid: {"group_id": "", "name": ""} for pid in profile_ids}
    conn = db.thread_connection()
    try:
        for i in range(0, len(profile_ids), _CHUNK):
            part = list(profile_ids[i:i + _CHUNK])
            marks = ",".join("?" * len(part))
            for pid, value in conn.fetchall(
                    f"SELECT profile_id, value FROM profile_external_ids WHERE profile_id IN ({marks}) "
                    "AND collection = 'accounts' AND id_type = 'group_id' ORDER BY created_at_ms, value", part):
                row = out[str(pid)]
                row["group_id"] = ";".join(filter(None, (row["group_id"], str(value))))
            for pid, value in conn.fetchall(
                    f"SELECT profile_id, value FROM profile_traits WHERE profile_id IN ({marks}) AND key = 'name' "
                    "AND value IS NOT NULL", part):
                name = orjson.loads(value)
                out[str(pid)]["name"] = name if isinstance(name, str) else orjson.dumps(name).decode()
    finally:
        _end(conn)
    return out


def _member_row(ids: dict[str, list[str]], value: Any, trait: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"user_id": ";".join(ids.get("user_id", [])), "email": ";".join(ids.get("email", [])),
                           "anonymous_id": ";".join(ids.get("anonymous_id", []))}
    if trait:
        row["value"] = value
    return row


def build_preview(db: Database, definitions: Definitions, key: str, *, as_of_ms: int | None = None,
                  overlap: str | None = None, sample: int = 10) -> dict[str, Any]:
    """Everything a preview shows, as plain data (the CLI and the API render it)."""
    defn = definitions[key]
    trait = isinstance(defn, ir.ComputedTrait)
    values = values_at(db, definitions, key, as_of_ms)
    size = len(values)
    if defn.options.level == "account":
        found = accounts(db, sorted(values))
        members = sorted(({**found[pid], **({"value": values[pid]} if trait else {})} for pid in values),
                         key=lambda r: (r["group_id"], r["name"]))
        shares = {"group_id": (sum(1 for pid in values if found[pid]["group_id"]) / size if size else 0.0)}
    else:
        ids = identifiers(db, sorted(values))
        members = sorted((_member_row(ids[pid], values[pid], trait) for pid in values),
                         key=lambda r: (r["user_id"] == "", r["user_id"], r["email"], r["anonymous_id"]))
        shares = {t: (sum(1 for pid in values if ids[pid].get(t)) / size if size else 0.0) for t in SHARE_TYPES}
    result: dict[str, Any] = {"key": key, "class": defn.computation_class, "level": defn.options.level,
                              "as_of_ms": as_of_ms, "size": size, "identifier_share": shares,
                              "sample": members[:max(0, sample)]}
    if overlap is not None:
        other = values_at(db, definitions, overlap, as_of_ms)
        both = len(set(values) & set(other))
        result["overlap"] = {"key": overlap, "size": len(other), "both": both,
                             "share_of_this": both / size if size else 0.0,
                             "share_of_other": both / len(other) if other else 0.0}
    result["_members"] = members
    return result


def members_csv(preview: dict[str, Any]) -> str:
    """One row per member: user_id, email, anonymous_id (several values joined by ``;``), or for an
    account-level key the account's group_id, and, for traits, the value (JSON for lists and objects)."""
    trait = preview["class"] == "trait"
    who = ["group_id"] if preview.get("level") == "account" else ["user_id", "email", "anonymous_id"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*who, *(["value"] if trait else [])])
    for row in preview["_members"]:
        cells = [row[c] for c in who]
        if trait:
            value = row["value"]
            cells.append(value if isinstance(value, str) else orjson.dumps(value).decode())
        writer.writerow(cells)
    return out.getvalue()


def public(preview: dict[str, Any]) -> dict[str, Any]:
    """The preview without the full member list (for JSON output and the API)."""
    return {k: v for k, v in preview.items() if k != "_members"}
