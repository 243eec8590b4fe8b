"""What each destination holds: confirmed snapshots, the planned view, and the delivery hook.

Two views of one (destination, profile, computation), both derived from durable rows:

* **confirmed** (``activation_snapshots``): what delivery confirmed. It moves forward only when
  activation folds a delivery receipt (``apply_receipts``: delivered rows delivery left
  ``applied`` false), in activation's own transaction; delivery never calls back up.
* **planned**: confirmed plus every outbox row for that key the destination may not hold yet
  (not terminal, or delivered but not folded), folded in queue order with ``diff.confirm``.
  Activation diffs each change against the planned view, so an exit that follows an
  undelivered enter is still sent (diffing against confirmed alone would see "never a member"
  and drop it). Dead rows are terminal and drop out of the planned view, so after a dead
  letter the next change is planned against what the destination really holds.

Read order matters on PostgreSQL's READ COMMITTED: we read the outbox rows first and the
snapshots second. A row folded between the two reads then appears in both, and folding a
send twice is harmless; the other order could miss it in both.

Snapshot columns: ``value`` is the JSON value, ``identifiers`` a JSON object
``{"ids": [[type, value], ...], "baseline": bool}`` (``Snapshot.baseline`` has no column of its own).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import orjson

from traitsync.activation.diff import Send, Snapshot, confirm
from traitsync.activation.types import Identifier
from traitsync.delivery import receipts
from traitsync.delivery.outbox import now_ms
from traitsync.store.database import Connection

EVENT_META: Final = "event"
LIST_META: Final = "list"
SnapshotKey = tuple[str, str]  # (profile_id, computation_id)
_CHUNK = 400


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _chunks(values: Sequence[str]) -> Iterable[Sequence[str]]:
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


def confirms(meta: Mapping[str, Any]) -> str | None:
    """What a delivered message confirms: an event snapshot or a list operation.

    Rows enqueued before this key was renamed carry it as ``kind``."""
    value = meta.get("confirms", meta.get("kind"))
    return None if value is None else str(value)


def send_meta(profile_id: str, computation_id: str, send: Send, version: int) -> dict[str, Any]:
    """What the receipt fold needs to move one delivered event message into the snapshot."""
    return {"confirms": EVENT_META, "profile_id": profile_id, "computation_id": computation_id,
            "id": [send.identifier.type, send.identifier.value], "value": send.value, "reason": send.reason,
            "version": version}


def _send_of(meta: Mapping[str, Any]) -> tuple[Send, int]:
    ident = Identifier(str(meta["id"][0]), str(meta["id"][1]))
    return Send(ident, meta["value"], meta.get("reason", "changed")), int(meta["version"])


def _decode(value: str | None, identifiers: str, version: int) -> Snapshot:
    data = orjson.loads(identifiers)
    return Snapshot(value=None if value is None else orjson.loads(value),
                    identifiers=frozenset(Identifier(t, v) for t, v in data.get("ids", [])),
                    version=int(version), baseline=bool(data.get("baseline", False)))


def load_confirmed(conn: Connection, destination_id: str, profile_ids: Sequence[str]) -> dict[SnapshotKey, Snapshot]:
    out: dict[SnapshotKey, Snapshot] = {}
    for part in _chunks(sorted(set(profile_ids))):
        for pid, cid, value, idents, version in conn.fetchall(
                "SELECT profile_id, computation_id, value, identifiers, version FROM activation_snapshots"
                f" WHERE destination_id = ? AND profile_id IN ({_marks(part)})", (destination_id, *part)):
            out[(str(pid), str(cid))] = _decode(value, idents, version)
    return out


def load_planned(conn: Connection, destination_id: str, profile_ids: Sequence[str]
                 ) -> tuple[dict[SnapshotKey, Snapshot], set[SnapshotKey]]:
    """The planned view of every (profile, computation) of these profiles, and the keys with
    messages the destination may not hold yet (see the module docstring for the read order)."""
    pending: list[tuple[SnapshotKey, Send, int]] = []
    for meta in receipts.undelivered_meta(conn, destination_id, profile_ids):
        if confirms(meta) != EVENT_META:
            continue
        send, version = _send_of(meta)
        pending.append(((str(meta["profile_id"]), str(meta["computation_id"])), send, version))
    snapshots = load_confirmed(conn, destination_id, profile_ids)
    for key, send, version in pending:
        snapshots[key] = confirm(snapshots.get(key), send, version)
    return snapshots, {key for key, _, _ in pending}


def _dumps(value: Any) -> str:
    """Compact JSON: orjson, or the standard library for what it refuses (integers past 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"))


_UPSERT_SNAPSHOT = (
    "INSERT INTO activation_snapshots (destination_id, profile_id, computation_id, value, identifiers, version,"
    " updated_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (destination_id, profile_id, computation_id)"
    " DO UPDATE SET value = excluded.value, identifiers = excluded.identifiers, version = excluded.version,"
    " updated_at_ms = excluded.updated_at_ms")


def _snapshot_row(destination_id: str, key: SnapshotKey, snapshot: Snapshot, at_ms: int) -> tuple[Any, ...]:
    profile_id, computation_id = key
    idents = orjson.dumps({"ids": [[i.type, i.value] for i in sorted(snapshot.identifiers)],
                           "baseline": snapshot.baseline}).decode()
    value = None if snapshot.value is None else _dumps(snapshot.value)
    return (destination_id, profile_id, computation_id, value, idents, snapshot.version, at_ms)


def store_snapshot(conn: Connection, destination_id: str, key: SnapshotKey, snapshot: Snapshot) -> None:
    conn.execute(_UPSERT_SNAPSHOT, _snapshot_row(destination_id, key, snapshot, now_ms()))


def confirm_event(conn: Connection, destination_id: str, meta: Mapping[str, Any]) -> None:
    """Fold one delivered event message into the confirmed snapshot (delivery's transaction)."""
    _confirm_events(conn, destination_id, [meta])


def _confirm_events(conn: Connection, destination_id: str, metas: Sequence[Mapping[str, Any]]) -> None:
    """Fold delivered event messages of one destination, in queue order: one read of the
    snapshots they touch and one write per snapshot (not a read and a write per message)."""
    if not metas:
        return
    current = load_confirmed(conn, destination_id, [str(m["profile_id"]) for m in metas])
    touched: dict[SnapshotKey, Snapshot] = {}
    for meta in metas:
        key = (str(meta["profile_id"]), str(meta["computation_id"]))
        send, version = _send_of(meta)
        touched[key] = current[key] = confirm(current.get(key), send, version)
    at = now_ms()
    conn.executemany(_UPSERT_SNAPSHOT, [_snapshot_row(destination_id, k, snap, at) for k, snap in touched.items()])


def apply_receipts(conn: Connection, *, limit: int = 1000) -> int:
    """Fold delivered messages into what each destination holds; returns how many were folded.

    Event messages move ``activation_snapshots``; list operations move list membership and a
    created list's id (``confirm_list_operation``). Runs in the caller's transaction. Runs of
    event receipts are folded together; a list operation between them keeps its place.
    """
    done = receipts.unapplied(conn, limit)
    events: dict[str, list[Mapping[str, Any]]] = {}
    for receipt in done:
        kind = confirms(receipt.meta)
        if kind == EVENT_META:
            events.setdefault(receipt.destination_id, []).append(receipt.meta)
        elif kind == LIST_META:
            for dest, metas in events.items():
                _confirm_events(conn, dest, metas)
            events.clear()
            confirm_list_operation(conn, receipt.destination_id, receipt.meta, receipt.result)
    for dest, metas in events.items():
        _confirm_events(conn, dest, metas)
    receipts.mark_applied(conn, [r.outbox_id for r in done])
    return len(done)


def confirm_list_operation(conn: Connection, destination_id: str, meta: Mapping[str, Any],
                           result: Mapping[str, Any] | None) -> None:
    """Fold one delivered list operation: the list now holds what was delivered.

    Members the vendor rejected for good (``result["rejected"]``: their positions in the
    operation) did not change on the list: an add leaves them off, a remove leaves them on, so
    the next sync sends them again."""
    comp = str(meta["computation_id"])
    action = meta.get("action")
    if action == "create":
        external = (result or {}).get("external_id")
        conn.execute("UPDATE activation_lists SET created = ?, external_id = COALESCE(?, external_id)"
                     " WHERE destination_id = ? AND computation_id = ?", (True, external, destination_id, comp))
        return
    rejected = {int(i) for i in (result or {}).get("rejected") or ()}
    members = [(str(p), str(t), str(v)) for n, (p, t, v) in enumerate(meta.get("members", [])) if n not in rejected]
    if action == "add":
        conn.executemany(
            "INSERT INTO activation_list_members (destination_id, computation_id, id_type, id_value, profile_id,"
            " added_at_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (destination_id, computation_id, id_type, id_value)"
            " DO UPDATE SET profile_id = excluded.profile_id",
            [(destination_id, comp, t, v, p, now_ms()) for p, t, v in members])
    elif action == "remove":
        conn.executemany(
            "DELETE FROM activation_list_members WHERE destination_id = ? AND computation_id = ? AND id_type = ?"
            " AND id_value = ?", [(destination_id, comp, t, v) for _, t, v in members])
