"""Activation end to end: result rows in the store -> activation -> outbox -> delivery -> a real receiver.

Reuses delivery's recording HTTP receiver and its databases (real SQLite file, real PostgreSQL
schema; PostgreSQL unreachable FAILS). ``Flow`` writes the upstream stages' rows directly
(profile identifiers, computation results, current values, profile changes), the contract
those stages publish, and runs the activation and delivery workers to completion.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.delivery.conftest import Receiver, pg_db, receiver, sqlite_db  # noqa: F401  (fixtures)
from traitsync.config import load_config_text
from traitsync.definitions.ir import computation_id
from traitsync.server.assemble import build_stages
from traitsync.server.project import resolve_project
from traitsync.store import Database

BASE_CONFIG = """\
space_id: spa_xyz
sources:
  - id: src_web
    write_key: web-key
computed_traits:
  - key: total_revenue_180_days
    kind: aggregation
    event: Order Completed
    property: revenue
    function: sum
    window: 180d
audiences:
  - key: first_time_shopper
    name: First Time Shopper
    condition:
      performed: {event: Order Completed, exactly: 1}
  - key: old_buyers
    historical: false
    condition:
      performed: {event: Order Completed, at_least: 1}
"""

TRAIT = "total_revenue_180_days"
AUDIENCE = "first_time_shopper"
TRAIT_ID = computation_id("tra", TRAIT)
AUDIENCE_ID = computation_id("aud", AUDIENCE)


def config_text(destinations: str) -> str:
    return BASE_CONFIG + "destinations:\n" + destinations


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Database:
    database: Database = request.getfixturevalue("sqlite_db" if request.param == "sqlite" else "pg_db")
    return database


class Flow:
    """Write upstream rows, run activation + delivery, read what the receiver got."""

    def __init__(self, db: Database, destinations: str, tmp_path: Path) -> None:
        self.db = db
        path = tmp_path / "traitsync.yaml"
        path.write_text(config_text(destinations))
        self.loaded = load_config_text(path.read_text(), file=str(path))
        self.stages = build_stages(resolve_project(self.loaded), db, delivery_poll=0.01, shared_limits=False)
        self.conn = db.connect()
        self.versions: dict[tuple[str, str], int] = {}
        self.offset = 0

    def close(self) -> None:
        self.conn.close()
        for w in self.stages.delivery.values():
            w.close()
        self.stages.activation.close()

    # -- upstream rows ---------------------------------------------------------------------------

    def identifier(self, profile_id: str, id_type: str, value: str) -> None:
        self.offset += 1
        with self.conn.transaction():
            self.conn.execute(
                "INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id, created_at_ms,"
                " first_message_id, event_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (id_type, value, collection) DO UPDATE SET profile_id = excluded.profile_id",
                (id_type, value, "users", profile_id, "src_web", 1_700_000_000_000 + self.offset, f"m{self.offset}",
                 self.offset))
            self.conn.execute(
                "INSERT INTO profile_changes (kind, collection, profile_id, other_profile_id, id_type, value,"
                " trait_keys, event_offset, message_id, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ("identifier_added", "users", profile_id, None, id_type, value, None, self.offset,
                 f"m{self.offset}", 1_700_000_000_000))

    def merge(self, survivor: str, absorbed: str) -> None:
        with self.conn.transaction():
            self.conn.execute("UPDATE profile_external_ids SET profile_id = ? WHERE profile_id = ?",
                              (survivor, absorbed))
            self.conn.execute(
                "INSERT INTO profile_changes (kind, collection, profile_id, other_profile_id, id_type, value,"
                " trait_keys, event_offset, message_id, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ("merged", "users", survivor, absorbed, None, None, None, None, None, 1_700_000_000_000))

    def result(self, profile_id: str, key: str, value: Any, *, cause: str = "msg-1",
               as_of_ms: int = 1_700_000_000_123) -> int:
        """One engine result row (value change) plus the current value, in one transaction."""
        kind = "audience" if key != TRAIT else "trait"
        comp_id = computation_id("aud" if kind == "audience" else "tra", key)
        old_version = self.versions.get((profile_id, key), 0)
        version = old_version + 1
        self.versions[(profile_id, key)] = version
        old = self.current(profile_id, key)
        with self.conn.transaction():
            self.conn.execute(
                'INSERT INTO computation_results (computation_key, computation_id, computation_class, profile_id,'
                " old_value, new_value, version, as_of_ms, cause, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key, comp_id, kind, profile_id, None if old is None else json.dumps(old),
                 None if value is None else json.dumps(value), version, as_of_ms, cause, as_of_ms))
            self.conn.execute(
                "INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile_id, computation_key) DO UPDATE SET"
                " value = excluded.value, version = excluded.version, updated_at_ms = excluded.updated_at_ms",
                (profile_id, key, None if value is None else json.dumps(value), version, as_of_ms))
        return version

    def current(self, profile_id: str, key: str) -> Any:
        row = self.conn.fetchone("SELECT value FROM computed_values WHERE profile_id = ? AND computation_key = ?",
                                 (profile_id, key))
        self.conn.commit()
        return None if row is None or row[0] is None else json.loads(row[0])

    # -- running ---------------------------------------------------------------------------------

    def activate(self) -> int:
        return self.stages.activation.drain()

    def deliver(self) -> int:
        """Deliver everything, then let activation fold the confirmations (as its next round would)."""
        settled = sum(w.drain(include_retries=True, timeout=20) for w in self.stages.delivery.values())
        self.stages.activation.apply_confirmations()
        return settled

    def run(self) -> None:
        self.activate()
        self.deliver()

    def sync_lists(self, destination_id: str) -> None:
        self.stages.lists.sync_now(destination_id)
        self.stages.delivery[destination_id].drain(include_retries=True, timeout=20)
        self.stages.activation.apply_confirmations()

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        out = self.conn.fetchall(sql, params)
        self.conn.commit()
        return out


#: Any plain email address.
PLAIN_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+\.[A-Za-z0-9.]+")


def plain_pii(flow: Flow, text: str) -> list[str]:
    """Plain emails in ``text``, and the flow's phone numbers in any form they could leak in:
    as written, digits only, without leading zeros, E.164. (Phone digits are matched by value,
    not by shape: ten digits are also a Google Ads customer id.)"""
    from traitsync.destinations.pii import InvalidIdentifier, e164

    found = PLAIN_EMAIL.findall(text)
    for (phone,) in flow.rows("SELECT value FROM profile_external_ids WHERE id_type = 'phone'"):
        digits = re.sub(r"\D", "", phone)
        forms = {phone, digits, digits.lstrip("0")}
        try:
            forms.add(e164(phone))
        except InvalidIdentifier:
            pass
        found.extend(f for f in sorted(forms) if len(f) >= 7 and f in text)
    return found


def shown_by_the_api(flow: Flow) -> str:
    """Every API answer about the flow's list destinations: summary (with list status), delivery
    overview and debugger, as JSON."""
    from traitsync.activation.routes import debug_entry, destination_summary, overview_dict
    from traitsync.delivery.overview import recent_messages

    parts: list[Any] = []
    conn = flow.db.connect()
    try:
        for dest in flow.stages.project.activation.list_destinations:
            parts.append(destination_summary(flow.db, dest, None))
            parts.append(overview_dict(flow.db, dest.id, 0, 2**62, lists=True))
            parts.append([debug_entry(e) for e in recent_messages(conn, dest.id, limit=500)])
    finally:
        conn.close()
    return json.dumps(parts)


@pytest.fixture
def flow_factory(db: Database, tmp_path: Path, request: pytest.FixtureRequest,
                 capfd: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Flows for a test; in the list destination tests, every log line the test printed and every
    API answer about its list destinations is then scanned: no plain email or phone number."""
    made: list[Flow] = []

    def make(destinations: str) -> Flow:
        f = Flow(db, destinations, tmp_path)
        made.append(f)
        return f

    yield make
    try:
        if request.module.__name__.rsplit(".", 1)[-1].startswith("test_list"):
            out, err = capfd.readouterr()
            sys.stdout.write(out)  # still shown if the test fails
            sys.stderr.write(err)
            for f in made:
                found = plain_pii(f, out + err + shown_by_the_api(f))
                assert found == [], f"plain personal data in logs or API answers: {found[:5]}"
    finally:
        for f in made:
            f.close()


def wait_for(predicate: Any, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())


__all__ = ["AUDIENCE", "AUDIENCE_ID", "TRAIT", "TRAIT_ID", "Flow", "Receiver", "config_text", "wait_for"]
