"""``traitsync compute --engine duckdb``: live results, point-in-time snapshots, ``--dry-run``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import sqlglot
from typer.testing import CliRunner

from traitsync.cli import app
from traitsync.log import EventLog
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store.database import Database

runner = CliRunner()
DAY = 86_400_000
CONFIG = """\
space_id: spa_test
sources: [{id: src_web, write_key: web-key}]
computed_traits:
  - {key: order_count, kind: event_counter, event: Order Completed}
  - {key: total_spend, kind: aggregation, event: Order Completed, property: revenue, function: sum}
audiences:
  - key: recent_buyers
    condition: {performed: {event: Order Completed, at_least: 1, within: 7d}}
  - key: abandoned_cart
    query: "event('Product Added').where(event('Order Completed').within(parent: 1 days).count() = 0)
      .within(30 days).count() >= 1"
"""


def _store(tmp_path: Path) -> tuple[Path, str, int]:
    config = tmp_path / "traitsync.yaml"
    config.write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    now = int(time.time() * 1000)
    EventLog(Database(url)).append_messages("src_web", [
        {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}, "messageId": "i1",
         "timestamp": format_iso_ms(now - 30 * DAY)},
        {"type": "identify", "userId": "u2", "traits": {"email": "u2@example.com"}, "messageId": "i2",
         "timestamp": format_iso_ms(now - 30 * DAY)},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"revenue": 20},
         "messageId": "o1", "timestamp": format_iso_ms(now - 20 * DAY)},
        {"type": "track", "userId": "u2", "event": "Order Completed", "properties": {"revenue": 5.5},
         "messageId": "o2", "timestamp": format_iso_ms(now - DAY)},
        {"type": "track", "userId": "u2", "event": "Product Added", "messageId": "p1",
         "timestamp": format_iso_ms(now - 3 * DAY)},
    ])
    return config, url, now


def _counts(url: str) -> tuple[int, ...]:
    conn = Database(url).connect()
    try:
        return tuple(int(conn.scalar(f"SELECT COUNT(*) FROM {t}")) for t in
                     ("computation_results", "computed_values", "delivery_outbox"))
    finally:
        conn.close()


def _members(url: str, sql: str, *params: object) -> set[str]:
    conn = Database(url).connect()
    try:
        return {str(r[0]) for r in conn.fetchall(
            "SELECT x.value FROM profile_external_ids x WHERE x.id_type = 'user_id' AND x.profile_id IN "
            f"({sql})", params)}
    finally:
        conn.close()


HOOK = """\
destinations:
  - id: dst_hook
    kind: webhook
    settings: {url: "http://127.0.0.1:9/hook"}
    connections: [{computation: recent_buyers, send: [identify, track]}]
"""


def _activate(config: Path, url: str) -> int:
    """Run activation once, as serve would: results in, outbox rows out (nothing is delivered)."""
    from traitsync.config import load_config
    from traitsync.server.assemble import build_stages
    from traitsync.server.project import resolve_project

    stages = build_stages(resolve_project(load_config(str(config))), Database(url))
    try:
        return int(stages.activation.drain())
    finally:
        stages.activation.close()


def test_live_then_as_of_snapshot_leaves_live_results_and_outbox_untouched(tmp_path: Path) -> None:
    config, url, now = _store(tmp_path)
    config.write_text(CONFIG + HOOK)
    live = runner.invoke(app, ["compute", "--engine", "duckdb", "-c", str(config), "--database-url", url])
    assert live.exit_code == 0, live.output
    _activate(config, url)
    assert _counts(url)[2] == 4  # u2 entered: identify + Audience Entered, to its user_id and its email
    flat = " ".join(live.output.split())
    assert "│ recent_buyers │ audience │ 1 │ 1 │" in flat
    assert "│ abandoned_cart │ audience │ 1 │ 1 │" in flat
    assert _members(url, "SELECT profile_id FROM computed_values WHERE computation_key = ? AND value = 'true'",
                    "recent_buyers") == {"u2"}
    again = runner.invoke(app, ["compute", "--engine", "duckdb", "-c", str(config), "--database-url", url])
    assert "│ recent_buyers │ audience │ 1 │ 0 │" in " ".join(again.output.split())  # nothing new: no change rows
    before = _counts(url)
    past = format_iso_ms(now - 15 * DAY)
    snap = runner.invoke(app, ["compute", "--engine", "duckdb", "--as-of", past, "-c", str(config),
                               "--database-url", url])
    assert snap.exit_code == 0, snap.output
    assert "snapshot as of" in snap.output
    # 15 days ago u1 had ordered 5 days before and u2 not yet: the membership since changed.
    assert _members(url, "SELECT profile_id FROM computation_snapshots WHERE computation_key = ? AND as_of_ms = ?",
                    "recent_buyers", now - 15 * DAY) == {"u1"}
    assert _counts(url) == before
    _activate(config, url)
    assert _counts(url) == before  # activation found nothing new to send
    assert _members(url, "SELECT profile_id FROM computed_values WHERE computation_key = ? AND value = 'true'",
                    "recent_buyers") == {"u2"}


def test_only_and_unknown_keys(tmp_path: Path) -> None:
    config, url, _ = _store(tmp_path)
    only = runner.invoke(app, ["compute", "--engine", "duckdb", "--only", "total_spend", "-c", str(config),
                               "--database-url", url])
    assert only.exit_code == 0, only.output
    flat = " ".join(only.output.split())
    # Created now with the default lookback (7 days): u1's order of 20 days ago does not count.
    assert "│ total_spend │ trait │ 1 │ 1 │" in flat and "recent_buyers" not in flat
    bad = runner.invoke(app, ["compute", "--engine", "duckdb", "--only", "nope", "-c", str(config),
                              "--database-url", url])
    assert bad.exit_code == 2
    assert "no computed trait or audience 'nope'" in " ".join(bad.output.split())


@pytest.mark.parametrize(("engine", "stock"), [("duckdb", "duckdb"), ("postgres", "postgres"), ("spark", "spark")])
def test_dry_run_prints_sql_that_parses_back(tmp_path: Path, engine: str, stock: str) -> None:
    config, url, _ = _store(tmp_path)
    result = runner.invoke(app, ["compute", "--engine", engine, "--dry-run", "-c", str(config),
                                 "--database-url", url])
    assert result.exit_code == 0, result.output
    sql = result.stdout
    statements = [s for s in sqlglot.parse(sql, read=stock) if s is not None]
    if engine == "spark":  # each CTE is its own cached statement (Spark inlines CTEs per reference)
        assert sql.lstrip().startswith("CACHE TABLE ev AS")
        assert len(statements) > 5
    else:
        assert sql.lstrip().startswith("WITH ev AS")
        assert len(statements) == 1 and statements[0].find(sqlglot.exp.With) is not None
    assert _counts(url)[:2] == (0, 0)  # a dry run computes nothing
