"""Accounts from the first event to the destination, with every stage real: identity resolves the
``group`` calls, the realtime engine computes the account audience from the users' events, and
activation and delivery send the account's ``group`` calls and its members' ``identify`` calls to
the recording HTTP receiver (SQLite and PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.activation_flow.account_flow import AccountFlow
from tests.activation_flow.conftest import Receiver
from traitsync.activation.ids import message_id
from traitsync.activation.types import Identifier
from traitsync.definitions.ir import computation_id
from traitsync.store import Database

CONFIG = """\
space_id: spa_xyz
sources:
  - id: src_web
    write_key: web-key
accounts:
  membership: latest
audiences:
  - key: buying_accounts
    name: Buying Accounts
    level: account
    query: "ANY event('Order Completed').count() >= 1"
destinations:
"""
KEY = "buying_accounts"
KEY_ID = computation_id("aud", KEY)
PERSONAS = {"computation_class": "audience", "computation_id": KEY_ID, "computation_key": KEY,
            "namespace": "spa_xyz", "space_id": "spa_xyz"}
INTEGRATIONS = {"All": False, "B2B Hook": True}


@pytest.fixture
def flow(db: Database, tmp_path: Path, receiver: Receiver) -> Iterator[AccountFlow]:
    made = AccountFlow(db, f"""\
  - id: dst_b2b
    name: B2B Hook
    kind: webhook
    settings: {{url: "{receiver.url}/hook"}}
    connections:
      - computation: {KEY}
        send: [group, identify]
""", tmp_path, config=CONFIG)
    yield made
    made.close()


def compute_and_send(flow: AccountFlow) -> None:
    engine = flow.stages.engine  # on PostgreSQL the partitioned engine (one partition), as `serve` runs it
    while engine.run_once():
        pass
    flow.run()


def calls(receiver: Receiver, start: int = 0) -> list[tuple[str, str, bool]]:
    out = []
    for m in receiver.messages()[start:]:
        who = m["groupId"] if m["type"] == "group" else m["userId"]
        out.append((m["type"], who, m["traits"][KEY]))
    return out


def test_a_users_order_puts_the_account_in_and_a_move_takes_it_out(flow: AccountFlow, receiver: Receiver) -> None:
    flow.group("u1", "g_acme", name="Acme")
    flow.group("u2", "g_acme")
    flow.group("u3", "g_beta", name="Beta")
    compute_and_send(flow)
    assert receiver.messages() == []  # no account has ordered: nothing to say yet

    flow.send({"type": "track", "userId": "u2", "event": "Order Completed", "properties": {"total": 30}})
    compute_and_send(flow)
    acme = flow.account("g_acme")
    group_call = receiver.messages()[0]
    assert group_call == {
        "type": "group", "anonymousId": acme, "groupId": "g_acme", "traits": {KEY: True},
        "context": {"personas": PERSONAS}, "integrations": INTEGRATIONS,
        "messageId": message_id(KEY_ID, acme, Identifier("group_id", "g_acme"), group_call_version(flow, acme),
                                "group", True),
        "timestamp": group_call["timestamp"]}
    assert sorted(calls(receiver)) == [("group", "g_acme", True), ("identify", "u1", True), ("identify", "u2", True)]

    # Under `membership: latest` u2's group call to Beta ends its link to Acme and takes its
    # order along: Acme leaves, Beta enters; u1 leaves with Acme, u2 stays in through Beta.
    seen = len(receiver.messages())
    flow.group("u2", "g_beta")
    compute_and_send(flow)
    assert sorted(calls(receiver, seen)) == [("group", "g_acme", False), ("group", "g_beta", True),
                                             ("identify", "u1", False), ("identify", "u3", True)]
    acme_calls = [m["traits"][KEY] for m in receiver.messages() if m.get("groupId") == "g_acme"]
    assert acme_calls == [True, False]  # entry before exit
    compute_and_send(flow)
    assert len(receiver.messages()) == seen + 4  # nothing sent twice


def group_call_version(flow: AccountFlow, account: str) -> int:
    rows = flow.rows("SELECT version FROM computed_values WHERE profile_id = ? AND computation_key = ?", (account, KEY))
    return int(rows[0][0])
