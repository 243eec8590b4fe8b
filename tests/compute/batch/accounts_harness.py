"""Account structures built the way production builds them, and the reference evaluator's answers.

Messages (``track``, ``identify``, ``group``) go through the event log and identity resolution, so
accounts, links (``profile_links``), account traits and merges are the store's own. The oracle
evaluates every user profile as the user-level property test does, and every account profile
with the reference evaluator given its current members: each linked user's events and traits.
"""

from __future__ import annotations

from itertools import count
from typing import Any

import orjson

from traitsync.compute.reference import Member, evaluate
from traitsync.definitions import Definitions
from traitsync.identity import IdentityWorker, default_identity_config, run_until_caught_up
from traitsync.log.event_log import EventLog
from traitsync.spec.event import StoredEvent
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store.database import Database

S = 1000
T0 = 1_700_000_000_000


class AccountStore:
    """Log + identity on one store (no realtime engine: the batch engines are under test)."""

    def __init__(self, url: str, definitions: Definitions) -> None:
        self.db = Database(url)
        self.log = EventLog(self.db)
        self.identity = IdentityWorker(self.db, default_identity_config())
        self.definitions = definitions
        self.ms = T0
        self._ids = count(1)

    def send(self, *messages: dict[str, Any]) -> None:
        out = []
        for m in messages:
            m = dict(m)
            m.setdefault("messageId", f"msg-{next(self._ids)}")
            m["timestamp"] = format_iso_ms(m.pop("t", self.ms))
            out.append(m)
        assert self.log.append_messages("src_web", out, received_at_ms=self.ms).inserted == len(out)

    def sync(self) -> None:
        run_until_caught_up(self.identity)

    def close(self) -> None:
        self.identity.close()

    # -- the store, read back ----------------------------------------------------------------------
    def _rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.db.thread_connection()
        rows = [tuple(r) for r in conn.fetchall(sql, params)]
        conn.commit()
        return rows

    def profiles(self, collection: str) -> list[str]:
        return [str(r[0]) for r in self._rows("SELECT profile_id FROM profiles WHERE collection = ? AND "
                                              "merged_into IS NULL ORDER BY profile_id", (collection,))]

    def canonical(self, pid: str) -> str:
        rows = self._rows("SELECT merged_into FROM profiles WHERE profile_id = ?", (pid,))
        return str(rows[0][0]) if rows and rows[0][0] is not None else pid

    def members_of(self, account: str) -> list[str]:
        """The live users linked to ``account`` now (links of merged profiles count for the survivor)."""
        users = {self.canonical(str(u)) for u, a in self._rows(
            "SELECT user_profile_id, account_profile_id FROM profile_links") if self.canonical(str(a)) == account}
        return sorted(users & set(self.profiles("users")))

    def history(self, pid: str) -> tuple[list[StoredEvent], dict[str, Any], dict[str, list[str]]]:
        members = [pid, *(str(r[0]) for r in self._rows("SELECT profile_id FROM profiles WHERE merged_into = ?",
                                                        (pid,)))]
        marks = ",".join("?" * len(members))
        rows = self._rows(
            'SELECT e."offset", e.message_id, e.source_id, e.type, e.event, e.user_id, e.anonymous_id, '
            'e.timestamp_ms, e.received_at_ms, e.body FROM profile_events pe '
            f'JOIN events e ON e."offset" = pe."offset" WHERE pe.profile_id IN ({marks})', tuple(members))
        events = [StoredEvent(*r[:9], body=orjson.loads(r[9])) for r in rows]
        traits = {str(k): orjson.loads(v) for k, v in self._rows(
            "SELECT key, value FROM profile_traits WHERE profile_id = ? AND value IS NOT NULL", (pid,))}
        ids: dict[str, list[str]] = {}
        for t, v in self._rows("SELECT id_type, value FROM profile_external_ids WHERE profile_id = ?", (pid,)):
            ids.setdefault(str(t), []).append(str(v))
        return events, traits, ids

    # -- the oracle ------------------------------------------------------------------------------------
    def expected(self, as_of: int, created: dict[str, int]) -> dict[str, dict[str, Any]]:
        """Every profile's (users and accounts) every value of its own level at ``as_of``."""
        defs = self.definitions
        out: dict[str, dict[str, Any]] = {}
        users = {pid: self.history(pid) for pid in self.profiles("users")}
        for pid, (events, traits, ids) in users.items():
            out[pid] = {k: evaluate(defs[k], events, traits, as_of, definitions=defs, identifiers=ids,
                                    created_at_ms=created.get(k))
                        for k in defs.order if defs[k].options.level == "user"}
        for pid in self.profiles("accounts"):
            members: list[Member] = [users[u] for u in self.members_of(pid)]
            events = [e for member in members for e in member[0]]
            traits = self.history(pid)[1]
            out[pid] = {k: evaluate(defs[k], events, traits, as_of, definitions=defs, created_at_ms=created.get(k),
                                    members=members)
                        for k in defs.order if defs[k].options.level == "account"}
        return out

    def table(self, rows: list[tuple[str, str, Any]]) -> dict[str, dict[str, Any]]:
        """Engine rows as the oracle's table: absent values filled as the reference reports them."""
        defs = self.definitions
        out: dict[str, dict[str, Any]] = {}
        for collection, level in (("users", "user"), ("accounts", "account")):
            for pid in self.profiles(collection):
                out[pid] = {k: (False if defs[k].computation_class == "audience" else None)
                            for k in defs.order if defs[k].options.level == level}
        for key, pid, value in rows:
            assert key in out[pid], (key, pid, "a value for a profile of the other level")
            out[pid][key] = value
        return out
