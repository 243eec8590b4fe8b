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


def test_destinations_list_shows_every_list_adapter_with_its_cadence_and_batch() -> None:
    from traitsync.destinations.registry import ADAPTERS

    out = CliRunner().invoke(_app(), ["destinations", "list"], env={"COLUMNS": "300"})
    assert out.exit_code == 0, out.output
    rows = {cells[0]: cells for line in out.output.splitlines()
            if len(cells := [c.strip() for c in line.split("│")[1:-1]]) == 7}
    lists = {slug: a for slug, a in ADAPTERS.items() if a.modes == {"list"}}
    assert {"facebook_custom_audiences", "google_ads_customer_match", "display_video_360", "snapchat_audiences",
            "pinterest_audiences", "marketo_static_lists", "responsys_lists", "sendgrid_lists", "iterable_lists",
            "salesforce_marketing_cloud_lists", "hubspot_lists", "mailchimp_lists"} <= set(lists)
    for slug, adapter in lists.items():
        _kind, modes, _cap, batch, cadence, minimum, _required = rows[slug]
        assert (modes, batch) == ("list", f"{adapter.list_batch:,}"), slug
        assert minimum == (f"{adapter.min_list_size:,}" if adapter.min_list_size else "-"), slug
        assert cadence == ("6h+" if adapter.min_list_interval_s == 21600 else "1h+"), slug
    assert rows["facebook_custom_audiences"][3:6] == ["10,000", "1h+", "100"]
    assert rows["google_ads_customer_match"][3:6] == ["100,000", "6h+", "100"]
    assert rows["snapchat_audiences"][3:6] == ["100,000", "1h+", "-"]
    assert rows["webhook"][1] == "event, list"
