"""``traitsync compute`` and ``preview`` with account-level definitions: results on ``acc_`` profiles
in the same tables as user results, snapshots with ``--as-of``, previews by group_id and name."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from tests.ingest.conftest import start_live_app
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
  - {key: account_spend, kind: aggregation, event: Order Completed, property: revenue, function: sum,
     level: account, historical: true, lookback: 30d}
  - {key: orders, kind: event_counter, event: Order Completed}
audiences:
  - key: buyer
    condition: {performed: {event: Order Completed, at_least: 1}}
  - key: big_accounts
    level: account
    historical: true
    lookback: 30d
    condition:
      all:
        - {computed_trait: {key: account_spend, op: greater_than, value: 10}}
        - {trait: {key: plan, op: equals, value: enterprise}}
  - key: all_buy
    level: account
    condition: {all_users: {in_audience: buyer}}
  - key: nobody_bought
    level: account
    query: "ALL NOT audience('buyer')"
"""


def _store(tmp_path: Path) -> tuple[Path, str, int]:
    config = tmp_path / "traitsync.yaml"
    config.write_text(CONFIG)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    now = int(time.time() * 1000)

    def at(days: float) -> str:
        return format_iso_ms(int(now - days * DAY))

    EventLog(Database(url)).append_messages("src_web", [
        # acme: u1 and u2 (u2 is also in globex); globex: u2 and u3; initech: u4 only, never ordered
        {"type": "group", "userId": "u1", "groupId": "acme", "traits": {"name": "Acme", "plan": "enterprise"},
         "messageId": "g1", "timestamp": at(10)},
        {"type": "group", "userId": "u2", "groupId": "acme", "traits": {}, "messageId": "g2", "timestamp": at(10)},
        {"type": "group", "userId": "u2", "groupId": "globex", "traits": {"name": "Globex", "plan": "free"},
         "messageId": "g3", "timestamp": at(10)},
        {"type": "group", "userId": "u3", "groupId": "globex", "traits": {}, "messageId": "g4", "timestamp": at(10)},
        {"type": "group", "userId": "u4", "groupId": "initech", "traits": {"plan": "enterprise"}, "messageId": "g5",
         "timestamp": at(10)},
        {"type": "track", "userId": "u1", "event": "Order Completed", "properties": {"revenue": 8},
         "messageId": "o1", "timestamp": at(5)},
        {"type": "track", "userId": "u2", "event": "Order Completed", "properties": {"revenue": 4},
         "messageId": "o2", "timestamp": at(1)},
        {"type": "track", "userId": "u3", "event": "Order Completed", "properties": {"revenue": 100},
         "messageId": "o3", "timestamp": at(2)},
    ])
    return config, url, now


def _values(url: str, table: str, key: str, as_of_ms: int | None = None) -> dict[str, object]:
    """group_id -> value of ``key`` on each account profile."""
    conn = Database(url).connect()
    try:
        where = "" if as_of_ms is None else f" AND v.as_of_ms = {as_of_ms}"
        return {str(g): json.loads(v) for g, v in conn.fetchall(
            f"SELECT x.value, v.value FROM {table} v JOIN profile_external_ids x ON x.profile_id = v.profile_id "
            f"AND x.id_type = 'group_id' WHERE v.computation_key = ?{where}", (key,))}
    finally:
        conn.close()


def test_compute_publishes_account_results_and_snapshots(tmp_path: Path) -> None:
    config, url, now = _store(tmp_path)
    args = ["-c", str(config), "--database-url", url]
    live = runner.invoke(app, ["compute", "--engine", "duckdb", *args])
    assert live.exit_code == 0, live.output
    assert "skipped" not in live.output
    flat = " ".join(live.output.split())
    assert "│ account_spend │ trait │ 2 │ 2 │" in flat
    assert "│ big_accounts │ audience │ 1 │ 1 │" in flat
    # u2's order counts for both of its accounts
    assert _values(url, "computed_values", "account_spend") == {"acme": 12, "globex": 104}
    assert _values(url, "computed_values", "big_accounts") == {"acme": True}  # globex is on the free plan
    assert _values(url, "computed_values", "all_buy") == {"acme": True, "globex": True}
    assert _values(url, "computed_values", "nobody_bought") == {"initech": True}
    conn = Database(url).connect()
    try:
        rows = conn.fetchall("SELECT computation_key, profile_id, old_value, new_value, cause FROM "
                             "computation_results WHERE computation_key = 'big_accounts'")
    finally:
        conn.close()
    assert [(r[0], str(r[1])[:4], r[2], r[3], r[4]) for r in rows] == [
        ("big_accounts", "acc_", None, "true", "batch:duckdb")]
    # Three days ago neither u2 nor u3 had ordered: acme had spent 8 (not big), globex nothing.
    past = now - 3 * DAY
    snap = runner.invoke(app, ["compute", "--engine", "duckdb", "--as-of", format_iso_ms(past), *args])
    assert snap.exit_code == 0, snap.output
    assert _values(url, "computation_snapshots", "account_spend", past) == {"acme": 8}
    assert _values(url, "computation_snapshots", "big_accounts", past) == {}
    assert _values(url, "computation_snapshots", "all_buy", past) == {}
    assert _values(url, "computation_snapshots", "nobody_bought", past) == {"globex": True, "initech": True}


def test_preview_shows_accounts_by_group_id_and_name(tmp_path: Path) -> None:
    config, url, now = _store(tmp_path)
    args = ["-c", str(config), "--database-url", url]
    assert runner.invoke(app, ["compute", "--engine", "duckdb", *args]).exit_code == 0
    table = runner.invoke(app, ["preview", "all_buy", *args])
    assert table.exit_code == 0, table.output
    flat = " ".join(table.output.split())
    assert "all_buy: Live, size 2" in flat and "identifiers: group_id 100%" in flat
    assert "│ acme │ Acme │ true │" in flat and "│ globex │ Globex │ true │" in flat
    assert "acc_" not in table.output
    data = json.loads(runner.invoke(app, ["preview", "account_spend", "--format", "json", *args]).stdout)
    assert data["level"] == "account" and data["size"] == 2
    assert data["sample"] == [{"group_id": "acme", "name": "Acme", "value": 12},
                              {"group_id": "globex", "name": "Globex", "value": 104}]
    csv = runner.invoke(app, ["preview", "account_spend", "--format", "csv", *args]).stdout
    assert csv == "group_id,value\nacme,12\nglobex,104\n"
    past = format_iso_ms(now - 3 * DAY)  # no snapshot: computed on the spot
    computed = runner.invoke(app, ["preview", "nobody_bought", "--as-of", past, "--format", "csv", *args])
    assert computed.stdout == "group_id\nglobex\ninitech\n"
    live = start_live_app(url, CONFIG + "management_api: {token: admin-token}\n")
    try:
        auth = {"Authorization": "Bearer admin-token"}
        base = live.base_url + "/api/v1/computations/account_spend/preview"
        body = httpx.get(base, params={"sample": 1}, headers=auth).json()
        assert body["sample"] == [{"group_id": "acme", "name": "Acme", "value": 12}]
        assert body["identifier_share"] == {"group_id": 1.0}
        assert httpx.get(base, params={"format": "csv"}, headers=auth).text == "group_id,value\nacme,12\nglobex,104\n"
    finally:
        live.close()
