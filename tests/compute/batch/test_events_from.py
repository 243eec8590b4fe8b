"""``--events-from``: the batch engine reads events from a Parquet or Delta location (DuckDB here).

A real SQLite store is filled through the log and identity resolution; its log is exported with
``traitsync log export --format parquet`` and the same definitions are computed over the store
and over the export. Then the store loses its events (as retention does) and the export still
gives every answer, because events resolve to profiles through the store's identifier map.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from traitsync.cli import app
from traitsync.compute.batch import compile_definitions
from traitsync.compute.batch.errors import BatchInputError
from traitsync.compute.batch.event_files import REQUIRED, locate, validate
from traitsync.compute.batch.runners import Row, run_duckdb
from traitsync.config.yaml_lines import load_yaml_text
from traitsync.definitions import load_definitions
from traitsync.log import EventLog
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store.database import Database

runner = CliRunner()
DAY = 86_400_000
DEFINITIONS = """\
computed_traits:
  - {key: orders, kind: event_counter, event: Order Completed}
  - {key: spend, kind: aggregation, event: Order Completed, property: revenue, function: sum}
  - {key: first_page, kind: first, event: Page Viewed, property: url}
audiences:
  - key: buyers
    condition: {performed: {event: Order Completed, at_least: 1, within: 30d}}
"""
CONFIG = "space_id: spa_test\nsources: [{id: src_web, write_key: web-key}]\n" + DEFINITIONS


def _store(tmp_path: Path) -> tuple[Path, Database, int]:
    """u1 and u2 order; a visitor browses as anon3, then signs in as u3 (its page view counts for u3)."""
    config = tmp_path / "traitsync.yaml"
    config.write_text(CONFIG)
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    now = int(time.time() * 1000)

    def at(days: float) -> str:
        return format_iso_ms(now - int(days * DAY))

    EventLog(db).append_messages("src_web", [
        {"type": "identify", "userId": "u1", "traits": {"email": "u1@example.com"}, "messageId": "i1",
         "timestamp": at(40)},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"revenue": 20},
         "messageId": "o1", "timestamp": at(35)},
        {"type": "track", "userId": "u2", "event": "Order Completed", "properties": {"revenue": 5.5},
         "messageId": "o2", "timestamp": at(2)},
        {"type": "track", "userId": "u2", "event": "Order Completed", "properties": {"revenue": 4},
         "messageId": "o3", "timestamp": at(1)},
        {"type": "page", "anonymousId": "anon3", "name": "Home", "properties": {"url": "/home"},
         "messageId": "p1", "timestamp": at(5)},
        {"type": "identify", "userId": "u3", "anonymousId": "anon3", "messageId": "i3", "timestamp": at(4)},
        {"type": "page", "userId": "u3", "name": "Pricing", "properties": {"url": "/pricing"},
         "messageId": "p2", "timestamp": at(3)},
        {"type": "track", "anonymousId": "stranger", "event": "Order Completed", "properties": {"revenue": 1},
         "messageId": "o4", "timestamp": at(1)},
    ])
    # A dry run only compiles; a real run resolves identities first (as serve does).
    result = runner.invoke(app, ["compute", "--engine", "duckdb", "-c", str(config), "--database-url", db.url])
    assert result.exit_code == 0, result.output
    return config, db, now


def _export(db: Database, path: Path) -> Path:
    result = runner.invoke(app, ["log", "export", "--format", "parquet", "-o", str(path), "--database-url", db.url])
    assert result.exit_code == 0, result.output
    assert "exported 8 events" in result.output
    return path


def _by_user(db: Database, rows: list[Row]) -> dict[tuple[str, str], Any]:
    """(key, user_id) -> value: profile ids are internal, user ids are what a reader checks."""
    conn = db.connect()
    try:
        users = {str(p): str(v) for p, v in conn.fetchall(
            "SELECT profile_id, value FROM profile_external_ids WHERE id_type = 'user_id'")}
    finally:
        conn.close()
    return {(key, users.get(pid, pid)): value for key, pid, value in rows}


def _query(now: int) -> Any:
    return compile_definitions(load_definitions(load_yaml_text(DEFINITIONS)), now)


def test_export_gives_the_stores_answers_and_keeps_them_after_the_store_drops_its_events(tmp_path: Path) -> None:
    _, db, now = _store(tmp_path)
    export = _export(db, tmp_path / "log.parquet")
    query = _query(now)
    from_store = _by_user(db, run_duckdb(db, query))
    expected = {("orders", "u1"): 1, ("orders", "u2"): 2, ("orders", "u3"): 0, ("spend", "u1"): 20,
                ("spend", "u2"): 9.5, ("first_page", "u3"): "/home", ("buyers", "u2"): True}
    assert from_store == expected
    location = locate(str(export))
    validate(location)
    assert _by_user(db, run_duckdb(db, query, events_from=location)) == expected
    conn = db.connect()
    conn.execute("DELETE FROM profile_events")
    conn.execute("DELETE FROM events")
    conn.commit()
    conn.close()
    assert _by_user(db, run_duckdb(db, query)) == {("orders", u): 0 for u in ("u1", "u2", "u3")}
    # The stranger's order (an anonymous id the store never resolved) counts for nobody.
    assert _by_user(db, run_duckdb(db, query, events_from=location)) == expected


def test_a_folder_of_exports_a_glob_and_the_cli(tmp_path: Path) -> None:
    config, db, now = _store(tmp_path)
    folder = tmp_path / "lake" / "events"
    folder.mkdir(parents=True)
    table = pq.read_table(_export(db, tmp_path / "log.parquet"))
    pq.write_table(table.slice(0, 3), folder / "part-0.parquet")
    (folder / "2026").mkdir()
    pq.write_table(table.slice(3), folder / "2026" / "part-1.parquet")
    (folder / "_SUCCESS").write_text("")
    assert [Path(f).name for f in locate(str(folder)).files] == ["part-1.parquet", "part-0.parquet"]
    assert len(locate(str(tmp_path / "lake" / "**" / "*.parquet")).files) == 2
    query = _query(now)
    assert _by_user(db, run_duckdb(db, query, events_from=locate(f"file://{folder}")))[("spend", "u2")] == 9.5
    past = format_iso_ms(now - 10 * DAY)
    result = runner.invoke(app, ["compute", "--engine", "duckdb", "--as-of", past, "--events-from", str(folder),
                                 "-c", str(config), "--database-url", db.url])
    assert result.exit_code == 0, result.output
    flat = " ".join(result.output.split())
    # Ten days ago only u1 had ordered (25 days before then: a buyer); nobody had viewed a page.
    assert "│ spend │ trait │ 1 │ │ first_page │ trait │ 0 │ │ buyers │ audience │ 1 │" in flat


def test_a_delta_table(tmp_path: Path) -> None:
    from deltalake import write_deltalake

    _, db, now = _store(tmp_path)
    table = pq.read_table(_export(db, tmp_path / "log.parquet"))
    lake = tmp_path / "delta_events"
    write_deltalake(str(lake), table.slice(0, 4))
    write_deltalake(str(lake), table.slice(4), mode="append")
    location = locate(str(lake))
    assert location.format == "delta"
    validate(location)
    assert _by_user(db, run_duckdb(db, _query(now), events_from=location)) == _by_user(db, run_duckdb(db, _query(now)))
    with pytest.raises(BatchInputError, match="not a Delta table"):
        locate(str(tmp_path), "delta")
    with pytest.raises(BatchInputError, match="name the Delta table's folder, not its _delta_log"):
        locate(str(lake / "_delta_log"))


def test_bad_locations_are_one_clear_line(tmp_path: Path) -> None:
    with pytest.raises(BatchInputError, match=r"^--events-from /nope/x: no such file or folder$"):
        locate("/nope/x")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchInputError, match="no Parquet files there"):
        locate(str(tmp_path / "empty"))
    with pytest.raises(BatchInputError, match="no Parquet files there"):
        locate(str(tmp_path / "*.parquet"))
    fields = {name: (pa.int64() if kind == "int64" else pa.string()) for name, kind in REQUIRED.items()}
    no_body = tmp_path / "no_body.parquet"
    pq.write_table(pa.table({n: pa.array([], t) for n, t in fields.items() if n != "body"}), no_body)
    with pytest.raises(BatchInputError) as missing:
        validate(locate(str(no_body)))
    assert str(missing.value) == (
        f"--events-from {no_body}: column 'body' is missing (the files need the columns of "
        "`traitsync log export --format parquet`: offset, type, event, source_id, userId, anonymousId, "
        "timestamp_ms, received_at_ms, body)")
    text_time = tmp_path / "text_time.parquet"
    pq.write_table(pa.table({n: pa.array([], pa.string() if n == "timestamp_ms" else t)
                             for n, t in fields.items()}), text_time)
    with pytest.raises(BatchInputError, match=r"column 'timestamp_ms' is string, not int64$"):
        validate(locate(str(text_time)))
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(BatchInputError, match=r"junk\.parquet: not a Parquet file"):
        validate(locate(str(junk)))
    with pytest.raises(BatchInputError, match="--events-format csv: choose one of auto, parquet, delta"):
        locate(str(junk), "csv")


def test_cli_refusals(tmp_path: Path) -> None:
    config = tmp_path / "traitsync.yaml"
    config.write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    pg = runner.invoke(app, ["compute", "--engine", "postgres", "--events-from", str(tmp_path), "-c", str(config),
                             "--database-url", url])
    assert pg.exit_code == 2
    assert "--events-from is for --engine duckdb or spark" in " ".join(pg.output.split())
    realtime = runner.invoke(app, ["compute", "--events-from", str(tmp_path), "-c", str(config),
                                   "--database-url", url])
    assert realtime.exit_code == 2
    assert "are for the batch engines" in " ".join(realtime.output.split())
    missing = runner.invoke(app, ["compute", "--engine", "duckdb", "--events-from", str(tmp_path / "none"),
                                  "-c", str(config), "--database-url", url])
    assert missing.exit_code == 2
    assert "no such file or folder" in " ".join(missing.output.split())
    remote = runner.invoke(app, ["compute", "--engine", "duckdb", "--events-from", "s3://bucket/events/",
                                 "-c", str(config), "--database-url", url])
    assert remote.exit_code == 2
    assert "DuckDB reads local files only" in " ".join(remote.output.split())


def test_log_export_parquet_since_with_a_progress_bar(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    log = EventLog(db)
    day0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
    for day in range(3):
        log.append_messages("src_web", [{"type": "track", "userId": f"u{day}{i}", "event": "Order Completed",
                                         "messageId": f"m{day}-{i}"} for i in range(4)],
                            received_at_ms=day0 + day * DAY)
    out = tmp_path / "since.parquet"
    result = runner.invoke(app, ["log", "export", "--format", "parquet", "-o", str(out),
                                 "--since", "2026-01-02T00:00:00Z", "--database-url", db.url])
    assert result.exit_code == 0, result.output
    assert "exporting" in result.output and "12/12 log offsets" in result.output
    assert "exported 8 events" in result.output
    table = pq.read_table(out)
    assert table.column_names == ["offset", "messageId", "source_id", "type", "event", "userId", "anonymousId",
                                  "timestamp_ms", "received_at_ms", "body"]
    assert table.column("messageId").to_pylist() == [f"m{d}-{i}" for d in (1, 2) for i in range(4)]
    validate(locate(str(out)))
    bad = runner.invoke(app, ["log", "export", "--format", "parquet", "--database-url", db.url])
    assert bad.exit_code == 2
    assert "--format parquet needs --output FILE" in bad.output
