"""Safety tooling Segment does not offer: explain a profile, count violations (Insights).

Functions return plain data plus a Rich renderable; the CLI prints the renderable and
``--json`` prints the data.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.tree import Tree

from traitsync.identity.resolver import ACCOUNTS, CATEGORIES, USERS
from traitsync.store.database import Connection, Database


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _done(conn: Connection) -> None:
    if conn.dialect == "postgresql":
        conn.commit()


def canonical_of(conn: Connection, profile_id: str) -> str:
    merged = conn.scalar("SELECT merged_into FROM profiles WHERE profile_id = ?", (profile_id,))
    return str(merged) if merged else profile_id


def members_of(conn: Connection, canonical: str) -> list[str]:
    """The canonical profile and every profile merged into it (merged_into is kept flat)."""
    rows = conn.fetchall("SELECT profile_id FROM profiles WHERE merged_into = ? ORDER BY created_offset",
                         (canonical,))
    return [canonical, *(str(r[0]) for r in rows)]


@dataclass
class Explanation:
    id_type: str
    value: str
    profile_id: str | None
    data: dict[str, Any] = field(default_factory=dict)
    tree: Tree = field(default_factory=lambda: Tree(""))


def explain(db: Database, id_type: str, value: str, collection: str = USERS) -> Explanation:
    """How the profile holding ``id_type:value`` was built, and why identifiers were refused."""
    conn = db.connect()
    try:
        return _explain(conn, id_type, value, collection)
    finally:
        conn.close()


def _refusals(conn: Connection, where: str, params: tuple[Any, ...]) -> list[dict[str, Any]]:
    rows = conn.fetchall(
        "SELECT action, category, id_type, value, message_id, source_id, at_ms, detail, profile_id "
        f"FROM identity_audit WHERE action IN ('demoted', 'violation') AND {where} ORDER BY id", params)
    return [{"action": r[0], "category": r[1], "id_type": r[2], "value": r[3], "message_id": r[4],
             "source_id": r[5], "at": iso(r[6]), "detail": r[7], "profile_id": r[8]} for r in rows]


def _explain(conn: Connection, id_type: str, value: str, collection: str) -> Explanation:
    row = conn.fetchone("SELECT profile_id FROM profile_external_ids WHERE id_type = ? AND value = ? "
                        "AND collection = ?", (id_type, value, collection))
    own_refusals = _refusals(conn, "id_type = ? AND value = ?", (id_type, value))
    if row is None:
        tree = Tree(f"[bold]{id_type}:{value}[/] is not on any profile")
        for r in own_refusals:
            tree.add(f"[red]{r['action']}[/] ({r['category']}) by message {r['message_id']} from "
                     f"{r['source_id']} at {r['at']}: {r['detail']}")
        if not own_refusals:
            tree.add("no event carrying it has been processed")
        _done(conn)
        return Explanation(id_type, value, None, {"profile_id": None, "refusals": own_refusals}, tree)
    canonical = str(row[0])
    members = members_of(conn, canonical)
    marks = ",".join("?" * len(members))
    profiles = {r[0]: {"profile_id": r[0], "created_at": iso(r[1]), "first_message_id": r[2],
                       "first_source_id": r[3], "created_offset": r[4], "merge_count": r[5]}
                for r in conn.fetchall("SELECT profile_id, created_at_ms, first_message_id, first_source_id, "
                                       f"created_offset, merge_count FROM profiles WHERE profile_id IN ({marks})",
                                       members)}
    merges = [{"survivor": r[0], "absorbed": r[1], "message_id": r[2], "source_id": r[3], "at": iso(r[4])}
              for r in conn.fetchall("SELECT survivor_id, absorbed_id, message_id, source_id, at_ms FROM "
                                     f"identity_merges WHERE absorbed_id IN ({marks}) ORDER BY id", members)]
    identifiers = [{"type": r[0], "id": r[1], "message_id": r[2], "source_id": r[3], "created_at": iso(r[4]),
                    "first_profile": None}
                   for r in conn.fetchall("SELECT id_type, value, first_message_id, source_id, created_at_ms "
                                          "FROM profile_external_ids WHERE profile_id = ? ORDER BY event_offset, "
                                          "id_type, value", (canonical,))]
    refusals = _refusals(conn, f"profile_id IN ({marks})", tuple(members))
    demoted_by_messages = _refusals(
        conn, "action = 'demoted' AND message_id IN (SELECT first_message_id FROM profile_external_ids "
        "WHERE profile_id = ?)", (canonical,))
    _done(conn)
    head = profiles[canonical]
    tree = Tree(f"[bold]{id_type}:{value}[/] -> profile [bold cyan]{canonical}[/] ({collection})")
    tree.add(f"created by message {head['first_message_id']} from {head['first_source_id']} at "
             f"{head['created_at']} (log offset {head['created_offset']})")
    ids_branch = tree.add(f"identifiers ({len(identifiers)})")
    for ident in identifiers:
        ids_branch.add(f"{ident['type']}:{ident['id']}  added by {ident['message_id']} from "
                       f"{ident['source_id']} at {ident['created_at']}")
    if merges:
        merge_branch = tree.add(f"merges ({len(merges)}; the oldest profile survives)")
        for m in merges:
            p = profiles.get(m["absorbed"], {})
            merge_branch.add(f"{m['absorbed']} (created {p.get('created_at')}) merged into {m['survivor']} "
                             f"by message {m['message_id']} from {m['source_id']} at {m['at']}")
    seen: set[tuple[Any, ...]] = set()
    all_refusals = []
    for r in [*refusals, *demoted_by_messages, *own_refusals]:
        key = (r["action"], r["id_type"], r["value"], r["message_id"], r["category"])
        if key not in seen:
            seen.add(key)
            all_refusals.append(r)
    if all_refusals:
        ref_branch = tree.add(f"[red]refused or limited ({len(all_refusals)})[/]")
        for r in all_refusals:
            what = f"{r['id_type']}:{r['value']}" if r["id_type"] else "event"
            ref_branch.add(f"{r['action']} {what} [{r['category']}] by message {r['message_id']} from "
                           f"{r['source_id']} at {r['at']}: {r['detail']}")
    data = {"profile_id": canonical, "collection": collection, "profile": head, "identifiers": identifiers,
            "merges": merges, "members": members, "refusals": all_refusals}
    return Explanation(id_type, value, canonical, data, tree)


@dataclass
class ViolationSummary:
    category: str
    count: int
    samples: list[dict[str, Any]]


def violations(db: Database, *, samples: int = 5) -> list[ViolationSummary]:
    """Segment's Insights categories with counts and the newest samples (all categories listed)."""
    conn = db.connect()
    try:
        counts = {str(c): int(n) for c, n in conn.fetchall(
            "SELECT category, COUNT(*) FROM identity_audit WHERE action = 'violation' GROUP BY category")}
        out = []
        for category in CATEGORIES:
            rows = conn.fetchall(
                "SELECT message_id, source_id, at_ms, id_type, value, profile_id, detail FROM identity_audit "
                "WHERE action = 'violation' AND category = ? ORDER BY id DESC LIMIT ?", (category, samples))
            out.append(ViolationSummary(category, counts.get(category, 0), [
                {"message_id": r[0], "source_id": r[1], "at": iso(r[2]), "id_type": r[3], "value": r[4],
                 "profile_id": r[5], "detail": r[6]} for r in rows]))
        _done(conn)
        return out
    finally:
        conn.close()


def violations_table(summaries: list[ViolationSummary]) -> Table:
    table = Table(title="Identity violations (Profiles Insights categories)")
    table.add_column("category")
    table.add_column("count", justify="right")
    # Identifiers and message ids are folded, never cut: they are copied into the next command.
    table.add_column("latest samples (message, identifier, source)", overflow="fold")
    for s in summaries:
        sample = "\n".join(f"{x['message_id']} {_identifier(x)} ({x['source_id']})" for x in s.samples)
        table.add_row(s.category, f"{s.count:,}", sample or "-")
    return table


def _identifier(sample: dict[str, Any]) -> str:
    return f"{sample['id_type']}:{sample['value']}" if sample.get("id_type") else "(no identifier)"


__all__ = ["ACCOUNTS", "Explanation", "ViolationSummary", "canonical_of", "explain", "iso", "members_of",
           "violations", "violations_table"]
