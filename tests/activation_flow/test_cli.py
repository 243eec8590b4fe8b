"""``deliveries status|replay`` and ``destinations sync`` against a real store and receiver."""

from __future__ import annotations

from typing import Any

import typer
from typer.testing import CliRunner

from tests.activation_flow.conftest import AUDIENCE, Receiver
from tests.delivery.conftest import Reply
from traitsync.cli_activation import deliveries_app, destinations_app


def _app() -> typer.Typer:
    app = typer.Typer()
    app.add_typer(deliveries_app, name="deliveries")
    app.add_typer(destinations_app, name="destinations")
    return app


def test_status_replay_and_sync(flow_factory: Any, receiver: Receiver) -> None:
    flow = flow_factory(f"""\
  - id: dst_events
    kind: webhook
    settings: {{url: "{receiver.url}/e"}}
    connections:
      - computation: {AUDIENCE}
  - id: dst_list
    kind: webhook
    settings: {{url: "{receiver.url}/l"}}
    schedule: {{every: 1h}}
    connections:
      - computation: {AUDIENCE}
""")
    args = ["-c", flow.loaded.file, "--database-url", flow.db.url]
    flow.identifier("p1", "user_id", "u1")
    flow.run()
    receiver.script = [Reply(status=400)]
    flow.result("p1", AUDIENCE, True)
    flow.run()
    runner = CliRunner()
    out = runner.invoke(_app(), ["deliveries", "status", *args], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    row = next(line for line in out.output.splitlines() if "dst_events" in line)
    assert row.split("│")[1:-1] == [" dst_events  ", " event ", "     50 ", "       0 ", "         0 ",
                                    "          0 ", "         0 ", "    1 ", "        0 ", " 400: 1       "]
    out = runner.invoke(_app(), ["deliveries", "replay", "--destination", "dst_events", "--code", "400", *args])
    assert out.exit_code == 0 and "re-queued 1 dead letter for dst_events" in out.output
    flow.deliver()
    assert [m["traits"] for m in receiver.messages() if "traits" in m] == [{AUDIENCE: True}]
    out = runner.invoke(_app(), ["destinations", "sync", "dst_list", *args], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "delivered 2 messages" in out.output
    assert [(m["action"], len(m["members"])) for m in receiver.messages() if "action" in m] == [
        ("create", 0), ("add", 1)]
    out = runner.invoke(_app(), ["destinations", "sync", "dst_events", *args])
    assert out.exit_code == 2 and "not a list destination" in out.output
