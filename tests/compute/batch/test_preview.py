"""Previews: size, members by user_id / email, identifier mix, overlap, CSV; live and in the past."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.compute.batch.test_cli_batch import CONFIG, DAY, _store
from tests.ingest.conftest import start_live_app
from traitsync.cli import app
from traitsync.log import EventLog
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store.database import Database

runner = CliRunner()


def _computed(tmp_path: Path) -> tuple[Path, str, int]:
    config, url, now = _store(tmp_path)
    EventLog(Database(url)).append_messages("src_web", [
        {"type": "track", "anonymousId": "anon-3", "event": "Order Completed", "properties": {"revenue": 1},
         "messageId": "o3", "timestamp": format_iso_ms(now - DAY)},
        {"type": "identify", "anonymousId": "anon-3", "traits": {"email": "three@example.com"}, "messageId": "i3",
         "timestamp": format_iso_ms(now - DAY)},
    ])
    result = runner.invoke(app, ["compute", "--engine", "duckdb", "-c", str(config), "--database-url", url])
    assert result.exit_code == 0, result.output
    return config, url, now


def test_preview_table_json_csv_and_overlap(tmp_path: Path) -> None:
    config, url, _ = _computed(tmp_path)
    args = ["-c", str(config), "--database-url", url]
    table = runner.invoke(app, ["preview", "recent_buyers", "--overlap", "abandoned_cart", *args])
    assert table.exit_code == 0, table.output
    flat = " ".join(table.output.split())
    assert "recent_buyers: Live, size 2" in flat
    assert "identifiers: user_id 50%, email 100%, anonymous_id 50%" in flat
    assert "overlap with abandoned_cart (size 1): 1 in both, 50% of recent_buyers" in flat
    assert "use_" not in table.output
    data = json.loads(runner.invoke(app, ["preview", "recent_buyers", "--format", "json", *args]).stdout)
    assert data["size"] == 2
    assert data["identifier_share"] == {"user_id": 0.5, "email": 1.0, "anonymous_id": 0.5, "android.idfa": 0.0,
                                        "ios.idfa": 0.0}
    assert data["sample"] == [{"user_id": "u2", "email": "u2@example.com", "anonymous_id": ""},
                              {"user_id": "", "email": "three@example.com", "anonymous_id": "anon-3"}]
    csv = runner.invoke(app, ["preview", "total_spend", "--format", "csv", *args]).stdout
    assert csv == "user_id,email,anonymous_id,value\nu2,u2@example.com,,5.5\n,three@example.com,anon-3,1\n"


def test_preview_as_of_reads_the_past_without_a_snapshot_and_with_one(tmp_path: Path) -> None:
    config, url, now = _computed(tmp_path)
    args = ["-c", str(config), "--database-url", url]
    past = format_iso_ms(now - 15 * DAY)
    computed = runner.invoke(app, ["preview", "recent_buyers", "--as-of", past, "--format", "csv", *args])
    assert computed.exit_code == 0, computed.output
    assert computed.stdout == "user_id,email,anonymous_id\nu1,u1@example.com,\n"
    assert runner.invoke(app, ["compute", "--engine", "duckdb", "--as-of", past, *args]).exit_code == 0
    stored = runner.invoke(app, ["preview", "recent_buyers", "--as-of", past, *args])
    assert f"recent_buyers as of {past}: size 1" in " ".join(stored.output.split())


def test_preview_api_needs_the_token_and_answers_json_and_csv(tmp_path: Path) -> None:
    _, url, _ = _computed(tmp_path)
    live = start_live_app(url, CONFIG + "management_api: {token: admin-token}\n")
    try:
        base = live.base_url + "/api/v1/computations/recent_buyers/preview"
        assert httpx.get(base).status_code == 401
        auth = {"Authorization": "Bearer admin-token"}
        body = httpx.get(base, params={"overlap": "abandoned_cart", "sample": 1}, headers=auth).json()
        assert body["size"] == 2 and body["overlap"]["both"] == 1
        assert body["sample"] == [{"user_id": "u2", "email": "u2@example.com", "anonymous_id": ""}]
        csv = httpx.get(base, params={"format": "csv"}, headers=auth)
        assert csv.headers["content-type"].startswith("text/csv")
        assert csv.text.splitlines()[0] == "user_id,email,anonymous_id"
        assert httpx.get(live.base_url + "/api/v1/computations/nope/preview", headers=auth).status_code == 404
        spec = httpx.get(live.base_url + "/openapi.json").json()
        assert "get" in spec["paths"]["/api/v1/computations/{key}/preview"]
    finally:
        live.close()
