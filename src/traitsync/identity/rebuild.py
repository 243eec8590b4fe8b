"""Replay the log into a fresh graph and compare it with the live one.

The graph is a pure function of the log and the config (ids derive from messageIds, times from
event timestamps), so a replay must give the same graph; any difference is a bug or an
identifier deleted through the API (those are listed but expected).
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from traitsync.identity.config import IdentityConfig
from traitsync.identity.worker import CONSUMER, IdentityWorker
from traitsync.log.event_log import Checkpoints
from traitsync.store.database import Connection, Database

_QUERIES = {
    "external_ids": "SELECT collection, id_type, value, profile_id, first_message_id FROM profile_external_ids",
    "profiles": "SELECT profile_id, collection, merged_into, merge_count, created_offset, created_at_ms, "
                "updated_at_ms, first_message_id, last_message_id FROM profiles",
    "events": 'SELECT "offset", profile_id, account_id, external_ids FROM profile_events',
    "traits": "SELECT profile_id, key, value, updated_at_ms FROM profile_traits",
    "links": "SELECT user_profile_id, account_profile_id FROM profile_links",
    "merges": "SELECT survivor_id, absorbed_id, message_id FROM identity_merges",
}


def graph_snapshot(conn: Connection) -> dict[str, set[tuple[Any, ...]]]:
    """Everything the graph consists of, as comparable sets of rows."""
    out = {name: {tuple(r) for r in conn.fetchall(sql)} for name, sql in _QUERIES.items()}
    if conn.dialect == "postgresql":
        conn.commit()
    return out


def snapshot(db: Database) -> dict[str, set[tuple[Any, ...]]]:
    conn = db.connect()
    try:
        return graph_snapshot(conn)
    finally:
        conn.close()


@dataclass
class RebuildReport:
    equal: bool
    events: int
    seconds: float
    up_to_offset: int
    differences: dict[str, dict[str, list[tuple[Any, ...]]]] = field(default_factory=dict)

    def table(self) -> Table:
        table = Table(title=f"rebuild of {self.events} events up to offset {self.up_to_offset}: "
                            f"{'IDENTICAL' if self.equal else 'DIFFERENT'} ({self.seconds:.1f}s)")
        for col in ("part", "only live", "only rebuilt"):
            table.add_column(col)
        for name in _QUERIES:
            diff = self.differences.get(name, {"only_live": [], "only_rebuilt": []})
            table.add_row(name, str(len(diff["only_live"])), str(len(diff["only_rebuilt"])))
        return table


def rebuild(db: Database, config: IdentityConfig, *, into: Database | None = None,
            chunk_size: int = 5000) -> RebuildReport:
    """Replay the log of ``db`` up to the live worker's checkpoint into ``into`` (default: a temp
    SQLite file) and compare the two graphs row by row."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="traitsync-rebuild-") as tmp:
        target = into or Database(f"sqlite:///{Path(tmp) / 'rebuild.db'}")
        for _ in range(20):
            conn = db.connect()
            try:
                before = Checkpoints.get(conn, CONSUMER)
                live = graph_snapshot(conn)
                after = Checkpoints.get(conn, CONSUMER)
                if conn.dialect == "postgresql":
                    conn.commit()
            finally:
                conn.close()
            if before == after:
                break
        worker = IdentityWorker(target, config, log_db=db, chunk_size=chunk_size)
        try:
            events = worker.run_once(until_offset=before)
        finally:
            worker.close()
        fresh = snapshot(target)
    differences: dict[str, dict[str, list[tuple[Any, ...]]]] = {}
    for name in _QUERIES:
        only_live = sorted(live[name] - fresh[name], key=repr)
        only_rebuilt = sorted(fresh[name] - live[name], key=repr)
        if only_live or only_rebuilt:
            differences[name] = {"only_live": only_live, "only_rebuilt": only_rebuilt}
    return RebuildReport(not differences, events, time.monotonic() - started, before, differences)
