"""Retention deletes exactly what is past its time, a bounded number of rows per run, on both stores."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from tests.test_server_auth import CONFIG
from traitsync.cli import app
from traitsync.config import load_config_text
from traitsync.config.models import RetentionConfig
from traitsync.log.event_log import Checkpoints
from traitsync.retention import RetentionWorker, purge
from traitsync.server.assemble import build_stages
from traitsync.server.project import resolve_project
from traitsync.store import Database, migrate

DAY = 86_400_000
NOW = 1_800_000_000_000
OLD = NOW - 40 * DAY  # past every default (14 and 30 days)
NEW = NOW - 1 * DAY


def _seed(db: Database) -> None:
    conn = db.connect()
    with conn.transaction():
        for at in (OLD, OLD, OLD, NEW):
            conn.execute("INSERT INTO rejections (source_id, received_at_ms, code, message) VALUES (?, ?, ?, ?)",
                         ("src", at, "bad_request", "x"))
        outbox = [("delivered", True, True, OLD), ("delivered", True, False, OLD), ("pending", False, False, OLD),
                  ("dead", True, False, OLD), ("filtered", True, False, OLD), ("delivered", True, True, NEW)]
        for i, (state, terminal, applied, at) in enumerate(outbox):
            conn.execute(
                "INSERT INTO delivery_outbox (destination_id, order_key, message_id, message_type, state, terminal,"
                " attempts, created_at_ms, next_attempt_at_ms, finished_at_ms, body, applied) VALUES"
                " ('d', 'p', ?, 'track', ?, ?, 1, ?, ?, ?, '{}', ?)",
                (f"m{i}", state, terminal, at, at, at if terminal else None, applied))
            conn.execute("INSERT INTO delivery_attempts (outbox_id, attempt, at_ms, duration_ms, outcome)"
                         " VALUES (?, 1, ?, 5, 'ok')", (i + 1, at))
        for i, at in enumerate((OLD, OLD, OLD, NEW)):
            conn.execute("INSERT INTO computation_results (computation_key, computation_id, computation_class,"
                         " profile_id, old_value, new_value, version, as_of_ms, cause, at_ms) VALUES"
                         " ('k', 'id', 'audience', 'p', NULL, 'true', ?, ?, 'e', ?)", (i + 1, at, at))
        Checkpoints.set(conn, "activation.results", 2)  # activation has read the first two results
    conn.close()


def _rows(db: Database, sql: str) -> list[tuple[object, ...]]:
    conn = db.connect()
    try:
        return conn.fetchall(sql)
    finally:
        conn.commit()
        conn.close()


def test_purge_keeps_what_is_young_unread_open_or_dead(db_url: str) -> None:
    db = Database(db_url)
    migrate(db)
    _seed(db)
    first = purge(db, RetentionConfig(batch=2), now_ms=NOW, activation_runs=True)
    # the outbox rows' own attempts go with them; two more old attempts go by age
    assert first.deleted == {"rejections": 2, "delivery_outbox": 2, "delivery_attempts": 2,
                             "computation_results": 2}
    second = purge(db, RetentionConfig(batch=2), now_ms=NOW, activation_runs=True)
    assert second.deleted == {"rejections": 1, "delivery_outbox": 0, "delivery_attempts": 1,
                              "computation_results": 0}
    assert _rows(db, "SELECT received_at_ms FROM rejections") == [(NEW,)]
    # kept: delivered but not yet folded by activation, pending, dead (replay), and the young one
    assert _rows(db, "SELECT message_id FROM delivery_outbox ORDER BY id") == [("m1",), ("m2",), ("m3",), ("m5",)]
    assert _rows(db, "SELECT outbox_id FROM delivery_attempts ORDER BY id") == [(6,)]
    assert _rows(db, 'SELECT version FROM computation_results ORDER BY "offset"') == [(3,), (4,)]
    unread = purge(db, RetentionConfig(), now_ms=NOW, activation_runs=False)
    assert unread.deleted["computation_results"] == 1  # nobody reads results without event destinations


def test_the_workers_run_retention_and_log_stats_shows_table_sizes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'traitsync.db'}"
    db = Database(url)
    stages = build_stages(resolve_project(load_config_text(CONFIG, file="traitsync.yaml")), db)
    assert any(isinstance(w, RetentionWorker) for w in stages.workers())
    _seed(db)
    stages.retention.clock = lambda: NOW / 1000
    assert stages.retention.run_once().total == 3 + 2 + 3 + 2
    result = CliRunner().invoke(app, ["log", "stats", "--database-url", url], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") == 4}
    assert {"rejections", "delivery_outbox", "events", "privacy_regulations"} <= set(lines)
    assert lines["delivery_outbox"].split("│")[2].strip() == "4"
