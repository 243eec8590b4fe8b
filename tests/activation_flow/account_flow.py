"""An activation flow for account-level computations: real identity, engine-written results.

Profiles, accounts and links come from real ``identify`` / ``group`` calls appended to the log
and resolved by the identity worker. Account results are written by the engines' own result
writer (``compute.batch.publish.publish_values``: ``computed_values`` plus one
``computation_results`` row per change, keyed by the ``acc_`` profile id), so these tests hold
whichever engine computes the accounts. The engines themselves are not run here: the tests
choose the account values, and the flow under test is everything after them.
"""

from __future__ import annotations

import json
from itertools import count
from pathlib import Path
from typing import Any

from tests.activation_flow.conftest import Flow
from traitsync.compute.batch.publish import Target, publish_values
from traitsync.config import load_config_text
from traitsync.definitions.ir import Audience, computation_id
from traitsync.identity import run_until_caught_up
from traitsync.log.event_log import EventLog
from traitsync.server.assemble import build_stages
from traitsync.server.project import resolve_project
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store import Database

ACCOUNT_CONFIG = """\
space_id: spa_xyz
sources:
  - id: src_web
    write_key: web-key
computed_traits:
  - key: team_logins
    name: Team Logins
    level: account
    kind: event_counter
    event: Logged In
audiences:
  - key: enterprise_accounts
    name: Enterprise Accounts
    level: account
    condition:
      trait: {key: plan, op: equals, value: enterprise}
destinations:
"""

ACC_AUDIENCE = "enterprise_accounts"
ACC_TRAIT = "team_logins"
ACC_AUDIENCE_ID = computation_id("aud", ACC_AUDIENCE)
ACC_TRAIT_ID = computation_id("tra", ACC_TRAIT)
T0 = 1_700_000_000_000


class AccountFlow(Flow):
    """``Flow`` with account definitions, real group calls, and engine-written account results."""

    def __init__(self, db: Database, destinations: str, tmp_path: Path, *, config: str = ACCOUNT_CONFIG) -> None:
        self.db = db
        path = tmp_path / "traitsync.yaml"
        path.write_text(config + destinations)
        self.loaded = load_config_text(path.read_text(), file=str(path))
        self.project = resolve_project(self.loaded)
        self.stages = build_stages(self.project, db, delivery_poll=0.01, shared_limits=False)
        self.conn = db.connect()
        self.versions: dict[tuple[str, str], int] = {}
        self.offset = 0
        self.log = EventLog(db)
        self._ids = count(1)
        self.clock = T0

    # -- identity, through the real log and identity worker ---------------------------------------

    def send(self, *messages: dict[str, Any]) -> None:
        out = []
        for m in messages:
            self.clock += 1000
            out.append({**m, "messageId": f"m-{next(self._ids)}", "timestamp": format_iso_ms(self.clock)})
        assert self.log.append_messages("src_web", out, received_at_ms=self.clock).inserted == len(out)
        run_until_caught_up(self.stages.identity)

    def identify(self, user_id: str, **traits: Any) -> None:
        self.send({"type": "identify", "userId": user_id, "traits": traits})

    def group(self, user_id: str, group_id: str, **traits: Any) -> None:
        """Link the user to the account (created at its first group call), with account traits."""
        self.send({"type": "group", "userId": user_id, "groupId": group_id, "traits": traits})

    def end_link(self, user_id: str, group_id: str) -> None:
        """End a link as ``accounts: {membership: latest}`` does when the user is grouped elsewhere:
        the row leaves ``profile_links`` (current membership is always its rows)."""
        with self.conn.transaction():
            self.conn.execute("DELETE FROM profile_links WHERE user_profile_id = ? AND account_profile_id = ?",
                              (self.user(user_id), self.account(group_id)))

    def move(self, user_id: str, old_group: str, new_group: str) -> None:
        """A group call to another account that ends the old link (``membership: latest``)."""
        self.group(user_id, new_group)
        self.end_link(user_id, old_group)

    def user(self, user_id: str) -> str:
        return self._profile("users", "user_id", user_id)

    def account(self, group_id: str) -> str:
        return self._profile("accounts", "group_id", group_id)

    def _profile(self, collection: str, id_type: str, value: str) -> str:
        rows = self.rows("SELECT profile_id FROM profile_external_ids WHERE collection = ? AND id_type = ?"
                         " AND value = ?", (collection, id_type, value))
        assert len(rows) == 1, (collection, id_type, value, rows)
        return str(rows[0][0])

    # -- account results, written as the engines write them ----------------------------------------

    def publish(self, key: str, values: dict[str, Any], *, as_of_ms: int = T0 + 123, cause: str = "msg-1") -> None:
        """Set ``key`` for the accounts named by group id; the other accounts keep their value."""
        definition = self.project.definitions[key]
        audience = isinstance(definition, Audience)
        current = {str(p): (None if v is None else json.loads(v)) for p, v in self.rows(
            "SELECT profile_id, value FROM computed_values WHERE computation_key = ?", (key,))}
        current.update({self.account(g): v for g, v in values.items()})
        target = Target(key, definition.id, definition.computation_class, audience, False if audience else None)
        publish_values(self.db, target, current, as_of_ms, cause)
