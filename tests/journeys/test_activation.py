"""Activation of journey steps from result rows: once per destination per journey, exits only with exit settings.

Uses the activation flow harness (result rows in the store -> activation -> delivery -> a real
local receiver), on SQLite and PostgreSQL.
"""

from __future__ import annotations

from typing import Any

from tests.activation_flow.conftest import db, flow_factory  # noqa: F401  (fixtures)
from tests.delivery.conftest import Receiver
from traitsync.definitions.ir import computation_id
from traitsync.definitions.journey_model import step_computation_key

A = step_computation_key("j", "a")
B = step_computation_key("j", "b")
KEEP_A = step_computation_key("keep", "a")


def _config(receiver: Receiver) -> str:
    # The flow harness appends this after ``destinations:``; ``journeys:`` is a new top-level key.
    return f"""\
  - id: dst_hook
    name: Braze
    kind: webhook
    settings: {{url: "{receiver.url}/hook"}}
    connections:
      - {{computation: j.a, send: [track]}}
      - {{computation: j.b, send: [track]}}
      - {{computation: keep.a, send: [track]}}
journeys:
  - key: j
    entry: {{performed: {{event: X}}}}
    exit: {{after: 1d, reenter_after: 1d}}
    steps:
      - {{key: a}}
      - {{key: b, after: a}}
  - key: keep
    entry: {{performed: {{event: X}}}}
    steps:
      - {{key: a}}
"""


def _result(flow: Any, pid: str, key: str, value: bool) -> None:
    """A journey step's result row: the harness only knows its own keys, so the id is set here."""
    version = flow.versions.get((pid, key), 0) + 1
    flow.versions[(pid, key)] = version
    old = flow.current(pid, key)
    with flow.conn.transaction():
        flow.conn.execute(
            'INSERT INTO computation_results (computation_key, computation_id, computation_class, profile_id,'
            " old_value, new_value, version, as_of_ms, cause, at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, computation_id("aud", key), "audience", pid, None if old is None else str(old).lower(),
             "true" if value else "false", version, 1_700_000_000_000 + version, "timer", 1_700_000_000_000))
        flow.conn.execute(
            "INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms)"
            " VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile_id, computation_key) DO UPDATE SET"
            " value = excluded.value, version = excluded.version, updated_at_ms = excluded.updated_at_ms",
            (pid, key, "true" if value else "false", version, 1_700_000_000_000))


def _sent(receiver: Receiver) -> list[tuple[str, str]]:
    return [(m["event"], m["properties"]["audience_key"]) for m in receiver.messages()]


def test_same_destination_twice_in_one_journey_is_sent_once(flow_factory: Any, receiver: Receiver) -> None:  # noqa: F811
    flow = flow_factory(_config(receiver))
    flow.identifier("p1", "user_id", "u1")
    flow.run()
    _result(flow, "p1", A, True)
    _result(flow, "p1", B, True)
    flow.run()
    assert _sent(receiver) == [("Audience Entered", A)]
    # The journey exits (it has exit settings): what was sent is taken back, once.
    _result(flow, "p1", A, False)
    _result(flow, "p1", B, False)
    flow.run()
    assert _sent(receiver)[1:] == [("Audience Exited", A)]
    # Re-entry is a new journey instance: the destination gets the user again.
    _result(flow, "p1", A, True)
    flow.run()
    assert _sent(receiver)[2:] == [("Audience Entered", A)]


def test_no_exit_is_sent_without_exit_settings(flow_factory: Any, receiver: Receiver) -> None:  # noqa: F811
    flow = flow_factory(_config(receiver))
    flow.identifier("p1", "user_id", "u1")
    flow.run()
    _result(flow, "p1", KEEP_A, True)
    flow.run()
    _result(flow, "p1", KEEP_A, False)  # as when the profile is merged into another
    flow.run()
    assert _sent(receiver) == [("Audience Entered", KEEP_A)]
