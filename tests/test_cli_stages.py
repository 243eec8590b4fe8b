"""CLI commands over the later stages: identity explain/violations/rebuild and preview."""

from __future__ import annotations

import json
import time
from pathlib import Path

from typer.testing import CliRunner

from traitsync.cli import app
from traitsync.compute.realtime import RealtimeEngine
from traitsync.config import load_config
from traitsync.definitions import load_definitions
from traitsync.identity import IdentityWorker, load_identity_config, run_until_caught_up
from traitsync.log import EventLog
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store import Database

runner = CliRunner()
CONFIG = """\
space_id: spa_test
sources: [{id: src_web, write_key: web-key}]
audiences:
  - key: buyers
    condition:
      performed: {event: Order Completed, at_least: 1}
computed_traits:
  - key: order_count
    kind: event_counter
    event: Order Completed
"""


def _prepare(tmp_path: Path) -> tuple[Path, str]:
    config = tmp_path / "traitsync.yaml"
    config.write_text(CONFIG)
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    db = Database(db_url)
    # Within the default 7-day lookback of definitions without a window (spec 4.5).
    day = 86_400_000
    now = int(time.time() * 1000)
    EventLog(db).append_messages("src_web", [
        {"type": "identify", "userId": "u1", "anonymousId": "a1", "traits": {"email": "u1@example.com"},
         "messageId": "m1", "timestamp": format_iso_ms(now - 3 * day)},
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "m2",
         "timestamp": format_iso_ms(now - 2 * day)},
        {"type": "track", "anonymousId": "a2", "event": "Order Completed", "messageId": "m3",
         "timestamp": format_iso_ms(now - 2 * day)},
        {"type": "identify", "userId": "null", "anonymousId": "a3", "messageId": "m4",
         "timestamp": format_iso_ms(now - day)},
    ])
    loaded = load_config(config)
    run_until_caught_up(IdentityWorker(db, load_identity_config(loaded.document)))
    engine = RealtimeEngine(db, load_definitions(loaded.document))
    while engine.run_once():
        pass
    engine.close()
    return config, db_url


def test_identity_explain_violations_and_rebuild(tmp_path: Path) -> None:
    config, db_url = _prepare(tmp_path)
    explained = runner.invoke(app, ["identity", "explain", "email:u1@example.com", "--json", "--database-url",
                                    db_url])
    assert explained.exit_code == 0, explained.output
    data = json.loads(explained.output)
    assert json.dumps(data).count("u1@example.com") >= 1
    missing = runner.invoke(app, ["identity", "explain", "email:nobody@example.com", "--database-url", db_url])
    assert missing.exit_code == 1
    bad = runner.invoke(app, ["identity", "explain", "no-colon", "--database-url", db_url])
    assert bad.exit_code == 2 and "expected TYPE:VALUE" in bad.output
    violations = runner.invoke(app, ["identity", "violations", "--database-url", db_url])
    assert violations.exit_code == 0, violations.output
    assert "ID value blocked" in " ".join(violations.output.split())
    rebuilt = runner.invoke(app, ["identity", "rebuild", "-c", str(config), "--database-url", db_url])
    assert rebuilt.exit_code == 0, rebuilt.output
    assert "IDENTICAL" in rebuilt.output


def test_preview_shows_size_and_members(tmp_path: Path) -> None:
    config, db_url = _prepare(tmp_path)
    result = runner.invoke(app, ["preview", "buyers", "-c", str(config), "--database-url", db_url])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "size 1" in flat  # a2 is anonymous-only: not eligible by default (spec 4.3)
    assert "1" in flat.split("value")[-1]
    counts = runner.invoke(app, ["preview", "order_count", "-c", str(config), "--database-url", db_url])
    assert counts.exit_code == 0, counts.output
    # Every profile that an Order Completed event or an identify reached has a count.
    assert "order_count: Live" in " ".join(counts.output.split())
    unknown = runner.invoke(app, ["preview", "nope", "-c", str(config), "--database-url", db_url])
    assert unknown.exit_code == 2
    assert "no computed trait or audience 'nope'" in " ".join(unknown.output.split())


def test_compute_resolves_and_computes_once_with_as_of(tmp_path: Path) -> None:
    config = tmp_path / "traitsync.yaml"
    config.write_text(CONFIG)
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    EventLog(Database(db_url)).append_messages("src_web", [
        {"type": "track", "userId": "u1", "event": "Order Completed", "messageId": "c1",
         "timestamp": "2026-03-01T12:00:00Z"},
        {"type": "track", "userId": "u2", "event": "Order Completed", "messageId": "c2",
         "timestamp": "2026-03-01T13:00:00Z"},
    ])
    result = runner.invoke(app, ["compute", "--as-of", "2026-03-02T00:00:00Z", "-c", str(config),
                                 "--database-url", db_url])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    assert "│ buyers │ audience │ Live │ 2 │" in flat  # evaluated at --as-of: inside the 7-day lookback
    assert "│ order_count │ trait │ Live │ 2 │" in flat
    again = runner.invoke(app, ["compute", "-c", str(config), "--database-url", db_url])
    assert again.exit_code == 0, again.output
    batch = runner.invoke(app, ["compute", "--engine", "duckdb", "-c", str(config), "--database-url", db_url])
    assert batch.exit_code == 0, batch.output
    unknown = runner.invoke(app, ["compute", "--engine", "sqlserver", "-c", str(config), "--database-url", db_url])
    assert unknown.exit_code == 2
    assert "choose realtime, duckdb, postgres, spark" in " ".join(unknown.output.split())
