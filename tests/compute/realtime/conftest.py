"""Shared fixtures: a store with identity and the realtime engine on a fake clock, and the oracle."""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any

import orjson
import pytest

from traitsync.compute.realtime import RealtimeEngine, current_values
from traitsync.compute.reference import evaluate
from traitsync.config.yaml_lines import load_yaml_text
from traitsync.definitions import Definitions, load_definitions
from traitsync.identity import IdentityWorker, default_identity_config, run_until_caught_up
from traitsync.log.event_log import EventLog
from traitsync.spec.event import StoredEvent
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store.database import Database

S = 1000
D = 86400 * S
T0 = 1_700_000_000_000


def defs(yaml_text: str) -> Definitions:
    return load_definitions(load_yaml_text(yaml_text))


class Clock:
    def __init__(self, ms: int = T0) -> None:
        self.ms = ms

    def __call__(self) -> float:
        return self.ms / 1000


class Harness:
    """Log + identity + engine on one store; ``sync`` brings both stages up to the log head."""

    def __init__(self, url: str, definitions: Definitions, clock: Clock | None = None, **engine_kw: Any) -> None:
        self.db = Database(url)
        self.log = EventLog(self.db)
        self.identity = IdentityWorker(self.db, default_identity_config())
        self.clock = clock or Clock()
        self.definitions = definitions
        self.engine_kw = engine_kw
        self.engine = RealtimeEngine(self.db, definitions, clock=self.clock, **engine_kw)
        self._ids = count(1)

    def new_engine(self, definitions: Definitions | None = None) -> RealtimeEngine:
        self.engine.close()
        if definitions is not None:
            self.definitions = definitions
        self.engine = RealtimeEngine(self.db, self.definitions, clock=self.clock, **self.engine_kw)
        return self.engine

    def send(self, *messages: dict[str, Any]) -> None:
        out = []
        for m in messages:
            m = dict(m)
            m.setdefault("messageId", f"msg-{next(self._ids)}")
            if "t" in m:
                m["timestamp"] = format_iso_ms(m.pop("t"))
            m.setdefault("timestamp", format_iso_ms(self.clock.ms))
            out.append(m)
        result = self.log.append_messages("src_web", out, received_at_ms=self.clock.ms)
        assert result.inserted == len(out)

    def track(self, user: str, event: str, t: int | None = None, **props: Any) -> None:
        self.send({"type": "track", "userId": user, "event": event, "t": self.clock.ms if t is None else t,
                   "properties": props})

    def identify(self, user: str, **traits: Any) -> None:
        self.send({"type": "identify", "userId": user, "traits": traits})

    def sync(self, batch: int | None = None) -> None:
        run_until_caught_up(self.identity)
        while self.engine.run_once(batch) > 0:
            pass

    def tick(self, ms: int) -> int:
        self.clock.ms += ms
        return self.engine.fire_due(self.clock.ms)

    # -- the oracle ------------------------------------------------------------------------------
    def profiles(self) -> list[str]:
        conn = self.db.thread_connection()
        rows = conn.fetchall("SELECT profile_id FROM profiles WHERE collection = 'users' AND merged_into IS NULL "
                             "ORDER BY profile_id")
        conn.commit()
        return [str(r[0]) for r in rows]

    def profile_of(self, user: str) -> str:
        return self.profile_of_id("user_id", user)

    def profile_of_id(self, id_type: str, value: str) -> str:
        conn = self.db.thread_connection()
        pid = conn.scalar("SELECT profile_id FROM profile_external_ids WHERE id_type = ? AND value = ?",
                          (id_type, value))
        conn.commit()
        return str(pid)

    def history(self, pid: str) -> tuple[list[StoredEvent], dict[str, Any], dict[str, list[str]]]:
        conn = self.db.thread_connection()
        members = [pid, *(str(r[0]) for r in conn.fetchall("SELECT profile_id FROM profiles WHERE merged_into = ?",
                                                           (pid,)))]
        marks = ",".join("?" * len(members))
        rows = conn.fetchall(
            'SELECT e."offset", e.message_id, e.source_id, e.type, e.event, e.user_id, e.anonymous_id, '
            'e.timestamp_ms, e.received_at_ms, e.body FROM profile_events pe '
            f'JOIN events e ON e."offset" = pe."offset" WHERE pe.profile_id IN ({marks})', members)
        events = [StoredEvent(*r[:9], body=orjson.loads(r[9])) for r in rows]
        traits = {str(k): orjson.loads(v) for k, v in conn.fetchall(
            "SELECT key, value FROM profile_traits WHERE profile_id = ? AND value IS NOT NULL", (pid,))}
        ids: dict[str, list[str]] = {}
        for t, v in conn.fetchall("SELECT id_type, value FROM profile_external_ids WHERE profile_id = ?", (pid,)):
            ids.setdefault(str(t), []).append(str(v))
        conn.commit()
        return events, traits, ids

    def created_at(self, key: str) -> int:
        conn = self.db.thread_connection()
        value = int(conn.scalar("SELECT created_at_ms FROM computations WHERE key = ?", (key,)))
        conn.commit()
        return value

    def keys(self, level: str = "user") -> list[str]:
        return [k for k in self.definitions.order if self.definitions[k].options.level == level]

    def expected(self, pid: str, as_of: int | None = None) -> dict[str, Any]:
        events, traits, ids = self.history(pid)
        at = self.clock.ms if as_of is None else as_of
        return {key: evaluate(self.definitions[key], events, traits, at, definitions=self.definitions,
                              identifiers=ids, created_at_ms=self.created_at(key))
                for key in self.keys()}

    def accounts(self) -> list[str]:
        conn = self.db.thread_connection()
        rows = conn.fetchall("SELECT profile_id FROM profiles WHERE collection = 'accounts' ORDER BY profile_id")
        conn.commit()
        return [str(r[0]) for r in rows]

    def members(self, account: str) -> list[str]:
        conn = self.db.thread_connection()
        rows = conn.fetchall("SELECT user_profile_id FROM profile_links WHERE account_profile_id = ? "
                             "ORDER BY user_profile_id", (account,))
        conn.commit()
        return [str(r[0]) for r in rows]

    def expected_account(self, account: str, as_of: int | None = None) -> dict[str, Any]:
        """The reference on an account: the union of its members' events, its own traits, and
        each member (events, traits, identifiers) for ANY / ALL clauses."""
        _, traits, ids = self.history(account)
        members = [self.history(u) for u in self.members(account)]
        events = [e for m in members for e in m[0]]
        at = self.clock.ms if as_of is None else as_of
        return {key: evaluate(self.definitions[key], events, traits, at, definitions=self.definitions,
                              identifiers=ids, created_at_ms=self.created_at(key), members=members)
                for key in self.keys("account")}

    def actual(self, pid: str, level: str = "user") -> dict[str, Any]:
        values = current_values(self.db, pid)
        out: dict[str, Any] = {}
        for key in self.keys(level):
            v = values.get(key)
            out[key] = bool(v) if self.definitions[key].computation_class == "audience" else v
        return out

    def check(self) -> None:
        for pid in self.profiles():
            assert self.actual(pid) == self.expected(pid), pid
        if self.keys("account"):
            for acc in self.accounts():
                assert self.actual(acc, "account") == self.expected_account(acc), acc

    def results(self) -> list[tuple[Any, ...]]:
        conn = self.db.thread_connection()
        rows = conn.fetchall('SELECT computation_key, profile_id, old_value, new_value, version, cause '
                             'FROM computation_results ORDER BY "offset"')
        conn.commit()
        return [tuple(r) for r in rows]

    def close(self) -> None:
        self.engine.close()
        self.identity.close()


@pytest.fixture
def harness_factory(sqlite_url: str) -> Iterator[Any]:
    made: list[Harness] = []

    def make(yaml_text: str, url: str | None = None, **kw: Any) -> Harness:
        h = Harness(url or sqlite_url, defs(yaml_text), **kw)
        made.append(h)
        return h

    yield make
    for h in made:
        h.close()
