"""segment-spec 5.2 rules end to end: only on change, first sync, fan-out, re-syncs, exits, historical."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.activation_flow.conftest import AUDIENCE, TRAIT, Receiver, config_text
from traitsync.activation.config import load_activation, validate_destinations_section
from traitsync.config import load_config_text
from traitsync.definitions import load_definitions
from traitsync.errors import ConfigError


def hook(receiver: Receiver, keys: tuple[str, ...] = (AUDIENCE,), send: str = "[identify]",
         dest_id: str = "dst_a") -> str:
    conns = "".join(f"      - computation: {k}\n        send: {send}\n" for k in keys)
    return (f"  - id: {dest_id}\n    kind: webhook\n    settings: {{url: \"{receiver.url}/{dest_id}\"}}\n"
            f"    connections:\n{conns}")


def received(receiver: Receiver, key: str = AUDIENCE) -> list[tuple[str, str, Any]]:
    """(userId, email or '', value) per identify, in arrival order."""
    return [(m.get("userId") or m.get("anonymousId"), m["traits"].get("email", ""), m["traits"][key])
            for m in receiver.messages() if m["type"] == "identify"]


def test_only_on_change(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver, keys=(TRAIT,)))
    flow.identifier("p1", "user_id", "u1")
    flow.run()
    flow.result("p1", TRAIT, 10)
    flow.run()
    # A result row that repeats the value the destination holds (same value, newer version) sends nothing.
    flow.result("p1", TRAIT, 10)
    flow.run()
    flow.result("p1", TRAIT, 25.5)
    flow.run()
    flow.run()
    assert received(receiver, TRAIT) == [("u1", "", 10), ("u1", "", 25.5)]


def test_first_sync_sends_every_current_member_once(flow_factory: Any, receiver: Receiver) -> None:
    # Values exist before the destination is connected (an existing audience, a new destination).
    flow = flow_factory(hook(receiver))
    for n in range(5):
        flow.identifier(f"p{n}", "user_id", f"u{n}")
    for n in range(5):
        flow.result(f"p{n}", AUDIENCE, True)
    flow.result("p4", AUDIENCE, False)  # exited before the connection: not sent at all
    flow.run()
    assert sorted(received(receiver)) == [(f"u{n}", "", True) for n in range(4)]
    flow.run()
    assert len(receiver.messages()) == 4  # later rounds send nothing new


def test_fan_out_per_email_and_exit_to_every_identifier(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver))
    flow.identifier("p1", "user_id", "u1")
    flow.identifier("p1", "email", "a@x.com")
    flow.identifier("p1", "email", "b@x.com")
    flow.run()
    flow.result("p1", AUDIENCE, True)
    flow.run()
    assert received(receiver) == [("u1", "", True), ("u1", "a@x.com", True), ("u1", "b@x.com", True)]
    flow.result("p1", AUDIENCE, False)
    flow.run()
    assert sorted(received(receiver)[3:]) == [("u1", "", False), ("u1", "a@x.com", False), ("u1", "b@x.com", False)]


def test_exit_reaches_identifiers_id_sync_no_longer_selects(flow_factory: Any, receiver: Receiver) -> None:
    dest = hook(receiver).replace("send: [identify]", "send: [identify]\n        id_sync: {email: last}")
    flow = flow_factory(dest)
    flow.identifier("p1", "email", "a@x.com")
    flow.run()
    flow.result("p1", AUDIENCE, True)
    flow.run()
    flow.identifier("p1", "email", "b@x.com")  # "last" now selects b: it gets the re-sync
    flow.run()
    flow.result("p1", AUDIENCE, False)
    flow.run()
    rows = [(e, v) for _, e, v in received(receiver)]
    assert rows[:2] == [("a@x.com", True), ("b@x.com", True)]
    assert sorted(rows[2:]) == [("a@x.com", False), ("b@x.com", False)]


def test_resync_on_new_email(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver, keys=(TRAIT,)))
    flow.identifier("p1", "anonymous_id", "anon-1")
    flow.run()
    flow.result("p1", TRAIT, 99)
    flow.run()
    assert received(receiver, TRAIT) == []  # anonymous-only profile: no default identifier to send to
    flow.identifier("p1", "email", "new@x.com")
    flow.run()
    assert received(receiver, TRAIT) == [("anon-1", "new@x.com", 99)]
    flow.identifier("p1", "user_id", "u1")
    flow.run()
    assert received(receiver, TRAIT)[1:] == [("u1", "", 99)]
    flow.run()
    assert len(receiver.messages()) == 2


def test_resync_on_merge_and_exit_for_absorbed(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver))
    flow.identifier("p1", "user_id", "u1")
    flow.identifier("p2", "email", "two@x.com")
    flow.identifier("p3", "email", "three@x.com")
    flow.run()
    flow.result("p1", AUDIENCE, True)
    flow.result("p3", AUDIENCE, True)
    flow.run()
    assert sorted(received(receiver)) == [("p3", "three@x.com", True), ("u1", "", True)]
    # p2 (never a member) merges into member p1: its email gets p1's membership.
    flow.merge("p1", "p2")
    flow.run()
    assert received(receiver)[2:] == [("u1", "two@x.com", True)]
    # member p3 merges into p4 who is not a member: p3's email is told it left.
    flow.identifier("p4", "user_id", "u4")
    flow.merge("p4", "p3")
    flow.run()
    assert received(receiver)[3:] == [("u4", "three@x.com", False)]


def test_historical_off_sends_nothing_for_old_data(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver, keys=("old_buyers",)))
    flow.identifier("p1", "user_id", "u1")
    flow.identifier("p2", "user_id", "u2")
    flow.result("p1", "old_buyers", True)  # before the connection: history
    flow.run()
    flow.result("p2", "old_buyers", True, cause="backfill")  # the engine's backfill: history too
    flow.run()
    assert received(receiver, "old_buyers") == []
    flow.identifier("p1", "email", "late@x.com")  # a new identifier does not leak old membership
    flow.run()
    assert received(receiver, "old_buyers") == []
    flow.result("p2", "old_buyers", False)
    flow.identifier("p3", "user_id", "u3")
    flow.result("p3", "old_buyers", True)  # new data: sent
    flow.run()
    assert received(receiver, "old_buyers") == [("u3", "", True)]


def test_exit_after_undelivered_enter_is_still_sent(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(hook(receiver))
    flow.identifier("p1", "user_id", "u1")
    flow.run()
    flow.result("p1", AUDIENCE, True)
    flow.activate()  # enqueued, not delivered
    flow.result("p1", AUDIENCE, False)
    flow.activate()
    flow.deliver()
    assert received(receiver) == [("u1", "", True), ("u1", "", False)]
    snap = flow.rows("SELECT value, version FROM activation_snapshots WHERE profile_id = ?", ("p1",))
    assert snap == [("false", 2)]


def _loaded(tmp_path: Path, destinations: str) -> Any:
    path = tmp_path / "traitsync.yaml"
    text = config_text(destinations)
    path.write_text(text)
    return load_config_text(text, file=str(path))


def test_computed_trait_on_list_destination_is_refused(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, """\
  - id: dst_list
    kind: webhook
    settings: {url: "http://127.0.0.1:1/x"}
    schedule: {every: 1h}
    connections:
      - computation: first_time_shopper
      - computation: total_revenue_180_days
""")
    with pytest.raises(ConfigError) as err:
        validate_destinations_section(loaded, load_definitions(loaded.document))
    assert err.value.file == str(tmp_path / "traitsync.yaml")
    assert err.value.line == 28
    assert err.value.key == "destinations[0].connections[1].computation"
    assert "computed trait 'total_revenue_180_days' cannot go to list destination 'dst_list'" in err.value.detail


def test_unknown_computation_and_schedule_floor(tmp_path: Path) -> None:
    loaded = _loaded(tmp_path, """\
  - id: dst_a
    kind: webhook
    settings: {url: "http://127.0.0.1:1/x"}
    connections:
      - computation: nope
""")
    with pytest.raises(ConfigError) as err:
        load_activation(loaded, load_definitions(loaded.document))
    assert err.value.key == "destinations[0].connections[0].computation"
    assert "unknown computation 'nope'" in err.value.detail
    loaded = _loaded(tmp_path, """\
  - id: dst_list
    kind: webhook
    settings: {url: "http://127.0.0.1:1/x"}
    schedule: {every: 5s}
    connections:
      - computation: first_time_shopper
""")
    lines = validate_destinations_section(loaded, load_definitions(loaded.document))
    assert lines == ["destinations: 0 event, 1 list",
                     "  dst_list (webhook, list, 50 req/s, every 1m (schedule 5s raised to the Webhook floor)):"
                     " first_time_shopper"]
