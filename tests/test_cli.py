"""The traitsync command as a user runs it."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
from typer.testing import CliRunner

from traitsync.cli import app
from traitsync.log import EventLog
from traitsync.store import Database

runner = CliRunner()


def _messages(n: int, prefix: str) -> list[dict[str, object]]:
    return [{"type": "track", "userId": f"u{i}", "event": "Imported", "messageId": f"{prefix}{i}",
             "timestamp": "2025-01-01T00:00:00Z"} for i in range(n)]


def test_import_jsonl_gzip_and_parquet_with_summary(tmp_path: Path, config_file: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    plain = tmp_path / "a.jsonl"
    plain.write_bytes(b"\n".join(orjson.dumps(m) for m in _messages(5, "j")) + b"\n{not json}\n"
                      + orjson.dumps({"type": "track", "event": "NoUser"}) + b"\n")
    zipped = tmp_path / "b.jsonl.gz"
    zipped.write_bytes(gzip.compress(b"\n".join(orjson.dumps(m) for m in _messages(4, "g"))))
    parquet = tmp_path / "c.parquet"
    rows = _messages(3, "p")
    pq.write_table(pa.Table.from_pylist([{**r, "properties": json.dumps({"k": 1})} for r in rows]), parquet)
    result = runner.invoke(app, ["import", str(plain), str(zipped), str(parquet), "-c", str(config_file),
                                 "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert "stored" in result.output and "12" in result.output
    assert "rejected: bad_request" in result.output
    assert "rejected: no_user_anon_id" in result.output
    events = EventLog(Database(db_url)).read(0, 100)
    assert sorted(e.message_id for e in events) == sorted([f"j{i}" for i in range(5)] + [f"g{i}" for i in range(4)]
                                                          + [f"p{i}" for i in range(3)])
    assert {e.source_id for e in events} == {"src_web"}
    assert next(e for e in events if e.message_id == "p0").properties == {"k": 1}
    again = runner.invoke(app, ["import", str(zipped), "-c", str(config_file), "--database-url", db_url])
    assert "duplicates (already stored)" in again.output
    assert EventLog(Database(db_url)).count() == 12


def test_import_unknown_source_is_a_clear_error(tmp_path: Path, config_file: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("{}\n")
    result = runner.invoke(app, ["import", str(path), "--source", "nope", "-c", str(config_file),
                                 "--database-url", f"sqlite:///{tmp_path / 'x.db'}"])
    assert result.exit_code == 2
    assert "unknown source 'nope'; known: src_ios, src_web" in result.output


def test_log_export_jsonl_and_parquet_round_trip(tmp_path: Path, config_file: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    EventLog(Database(db_url)).append_messages("src_web", _messages(7, "x"))
    out = tmp_path / "out.jsonl"
    result = runner.invoke(app, ["log", "export", "--format", "jsonl", "-o", str(out), "--database-url", db_url])
    assert result.exit_code == 0, result.output
    lines = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [m["messageId"] for m in lines] == [f"x{i}" for i in range(7)]
    pq_out = tmp_path / "out.parquet"
    result = runner.invoke(app, ["log", "export", "--format", "parquet", "-o", str(pq_out),
                                 "--database-url", db_url])
    assert result.exit_code == 0, result.output
    assert pq.read_table(pq_out).num_rows == 7
    # The parquet export imports back into another store unchanged.
    other = f"sqlite:///{tmp_path / 'other.sqlite'}"
    runner.invoke(app, ["import", str(pq_out), "-c", str(config_file), "--database-url", other])
    assert [e.body for e in EventLog(Database(other)).read(0, 100)] == [e.body for e in
                                                                        EventLog(Database(db_url)).read(0, 100)]


def test_validate_reports_errors_with_location(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("space_id: s\nsources:\n  - id: a\n    writekey: k\n")
    result = runner.invoke(app, ["validate", "-c", str(bad)])
    assert result.exit_code == 2
    assert "bad.yaml:4 [sources[0].writekey]: unknown key (check its spelling against `traitsync schema`)" \
        in result.output


def test_validate_ok_and_schema(config_file: Path) -> None:
    result = runner.invoke(app, ["validate", "-c", str(config_file)])
    assert result.exit_code == 0, result.output
    assert "is valid" in " ".join(result.output.split())
    schema = json.loads(runner.invoke(app, ["schema"]).output)
    assert schema["title"] == "traitsync.yaml"
    assert schema["additionalProperties"] is False
    assert "sources" in schema["properties"]


def test_validate_covers_definitions_and_shows_ir(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("space_id: s\nsources: [{id: a, write_key: k}]\naudiences:\n  - key: recent_buyers\n"
                    "    condition:\n      performed: {event: Order Completed, at_least: 1, within: 30d}\n")
    shown = runner.invoke(app, ["validate", "-c", str(good), "--show-ir"])
    assert shown.exit_code == 0, shown.output
    ir = json.loads(shown.output)
    assert ir["definitions"][0]["key"] == "recent_buyers"
    assert ir["definitions"][0]["condition"] == {"performed": {"event": "Order Completed", "at_least": 1,
                                                               "within": "30d"}}
    bad = tmp_path / "cycle.yaml"
    bad.write_text("space_id: s\naudiences:\n  - key: a\n    condition: {in_audience: b}\n"
                   "  - key: b\n    condition: {in_audience: a}\n")
    result = runner.invoke(app, ["validate", "-c", str(bad)])
    assert result.exit_code == 2
    flat = " ".join(result.output.split())
    assert "The audience would create a cycle by referencing another audience" in flat
    assert "cycle.yaml:" in flat


def test_schema_includes_definition_and_identity_sections() -> None:
    schema = json.loads(runner.invoke(app, ["schema"]).output)
    assert schema["properties"]["audiences"]["type"] == "array"
    assert schema["properties"]["computed_traits"]["type"] == "array"
    assert "identity" in schema["properties"]


SHOP = """\
space_id: spa_test
sources: [{id: src_web, write_key: web-key}]
computed_traits:
  - {key: orders, kind: event_counter, event: Order Completed}
audiences:
  - key: buyers
    condition: {performed: {event: Order Completed, at_least: 1}}
"""


def _cli80(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "80"}
    env.pop("TRAITSYNC_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "traitsync.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env=env)


def test_preview_names_users_by_user_id_and_email_and_fits_80_columns(tmp_path: Path) -> None:
    (tmp_path / "traitsync.yaml").write_text(SHOP)
    messages = [{"type": "identify", "userId": "jane", "traits": {"email": "jane@example.com"}, "messageId": "i1"},
                {"type": "track", "userId": "jane", "event": "Order Completed", "messageId": "t1"}]
    (tmp_path / "events.jsonl").write_bytes(b"\n".join(orjson.dumps(m) for m in messages))
    assert _cli80("import", "events.jsonl", cwd=tmp_path).returncode == 0
    assert _cli80("compute", cwd=tmp_path).returncode == 0
    preview = _cli80("preview", "buyers", cwd=tmp_path)
    assert preview.returncode == 0, preview.stderr
    rows = [line.split("│")[1:-1] for line in preview.stdout.splitlines() if line.startswith("│")]
    assert [[cell.strip() for cell in row] for row in rows] == [["jane", "jane@example.com", "true"]]
    assert "use_" not in preview.stdout
    assert max(len(line) for line in preview.stdout.splitlines()) <= 80


def test_every_command_that_reads_a_store_takes_the_same_config_option(tmp_path: Path) -> None:
    (tmp_path / "traitsync.yaml").write_text(SHOP)
    (tmp_path / "events.jsonl").write_text('{"type": "track", "userId": "u", "event": "X"}\n{"type": "track"}\n')
    commands = [["import", "events.jsonl"], ["log", "stats"], ["log", "export"], ["identity", "violations"],
                ["compute"], ["identity", "rebuild"], ["identity", "explain", "user_id:u"], ["preview", "buyers"],
                ["validate"]]
    for command in commands:
        result = _cli80(*command, "-c", "traitsync.yaml", cwd=tmp_path)
        assert result.returncode == 0, (command, result.stderr)
    stats = _cli80("log", "stats", "-c", "traitsync.yaml", cwd=tmp_path)
    assert "rejected: no_user_anon_id" in stats.stdout
    missing = _cli80("log", "stats", "-c", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "nope.yaml" in missing.stderr


def test_reading_commands_in_the_wrong_folder_say_there_is_no_store(tmp_path: Path) -> None:
    (tmp_path / "traitsync.yaml").write_text(SHOP)
    for command in (["log", "stats"], ["log", "export"], ["identity", "violations"], ["preview", "buyers"]):
        result = _cli80(*command, cwd=tmp_path)
        assert result.returncode == 2, command
        assert " ".join(result.stderr.split()) == (
            "error: no store at sqlite:///.traitsync/traitsync.db: run this where traitsync serve or import ran, "
            "or point --database-url or TRAITSYNC_DATABASE_URL at the store")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["traitsync.yaml"]
