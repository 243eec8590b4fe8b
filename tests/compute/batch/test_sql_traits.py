"""SQL traits: a warehouse query's columns reach a webhook as ONE identify in the seeds' shape."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.activation_flow.conftest import Flow
from tests.delivery.conftest import Receiver
from traitsync.activation.ids import message_id
from traitsync.activation.types import Identifier
from traitsync.compute.batch.errors import SqlTraitError
from traitsync.compute.batch.sql_schedule import SqlTraitScheduler
from traitsync.compute.batch.sql_traits import SqlTraitConfig, load_sql_traits, run_sql_trait
from traitsync.definitions.ir import computation_id

KEY = "customer_facts"
KEY_ID = computation_id("tra", KEY)


def _warehouse(tmp_path: Path, rows: list[tuple[Any, ...]]) -> str:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE OR REPLACE TABLE customers (user_id VARCHAR, plan VARCHAR, ltv DOUBLE, orders INTEGER)")
    if rows:
        con.executemany("INSERT INTO customers VALUES (?, ?, ?, ?)", rows)
    con.close()
    return f"duckdb:///{path}"


def _hook(receiver: Receiver, warehouse: str, query: str = "SELECT user_id, plan, ltv, orders FROM customers") -> str:
    return f"""\
  - id: dst_hook
    name: Hook
    kind: webhook
    settings: {{url: "{receiver.url}/hook"}}
    connections:
      - computation: {KEY}
        send: [identify]
sql_traits:
  - key: {KEY}
    warehouse: "{warehouse}"
    query: "{query}"
    every: 1h
"""


def test_sql_trait_reaches_the_webhook_as_one_identify(flow_factory: Any, receiver: Receiver,
                                                       tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path, [("u123", "gold", 120.5, 3), ("nobody", "free", 0.0, 0)])
    flow: Flow = flow_factory(_hook(receiver, warehouse))
    flow.identifier("p1", "user_id", "u123")
    flow.run()
    [trait] = load_sql_traits(flow.loaded.document)
    run = run_sql_trait(flow.db, trait, now_ms=1_700_000_000_123)
    assert (run.rows, run.matched, run.unmatched, run.changed) == (2, 1, 1, 1)
    flow.run()
    values = {"plan": "gold", "ltv": 120.5, "orders": 3}
    assert receiver.messages() == [{
        "type": "identify", "userId": "u123", "traits": values,
        "context": {"personas": {"computation_class": "trait", "computation_id": KEY_ID, "computation_key": KEY,
                                 "namespace": "spa_xyz", "space_id": "spa_xyz"}},
        "integrations": {"All": False, "Hook": True},
        "messageId": message_id(KEY_ID, "p1", Identifier("user_id", "u123"), 1, "identify", values),
        "timestamp": "2023-11-14T22:13:20.123Z"}]
    # Unchanged rows send nothing; a user missing from the next result gets every column null.
    assert run_sql_trait(flow.db, trait).changed == 0
    _warehouse(tmp_path, [])
    assert run_sql_trait(flow.db, trait, now_ms=1_700_000_100_000).changed == 1
    flow.run()
    assert receiver.messages()[-1]["traits"] == {"plan": None, "ltv": None, "orders": None}


def test_bad_sql_and_a_missing_id_column_are_one_line_errors(sqlite_db: Any, tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path, [("u1", "gold", 1.0, 1)])
    bad = SqlTraitConfig(key="k", warehouse=warehouse, query="SELEC user_id FROM customers")
    with pytest.raises(SqlTraitError) as err:
        run_sql_trait(sqlite_db, bad)
    assert err.value.message.startswith("SQL trait k: the warehouse refused the query: Parser Error: syntax error")
    assert "\n" not in err.value.message
    no_id = SqlTraitConfig(key="k", warehouse=warehouse, query="SELECT plan, ltv FROM customers")
    with pytest.raises(SqlTraitError) as err:
        run_sql_trait(sqlite_db, no_id)
    assert err.value.message == ("SQL trait k: the query returns no user_id, email or anonymous_id column "
                                 "(columns: plan, ltv)")


def test_scheduler_runs_each_trait_once_per_period(sqlite_db: Any, tmp_path: Path) -> None:
    warehouse = _warehouse(tmp_path, [("u1", "gold", 1.0, 1)])
    now = [1_700_000_000.0]
    scheduler = SqlTraitScheduler(sqlite_db, [SqlTraitConfig(key="k", warehouse=warehouse,
                                                             query="SELECT user_id, plan FROM customers")],
                                  clock=lambda: now[0])
    assert scheduler.run_once() == 1
    assert scheduler.run_once() == 0
    now[0] += 12 * 3600 - 1
    assert scheduler.run_once() == 0
    now[0] += 1
    assert scheduler.run_once() == 1


def test_spark_warehouses_name_their_master() -> None:
    from pydantic import ValidationError

    from traitsync.compute.batch.sql_traits import spark_master

    assert spark_master(SqlTraitConfig(key="k", warehouse="spark://spark:7077", query="q").warehouse) \
        == "spark://spark:7077"
    assert spark_master(SqlTraitConfig(key="k", warehouse="spark:local[2]", query="q").warehouse) == "local[2]"
    assert spark_master("spark:k8s://https://k8s.example:6443") == "k8s://https://k8s.example:6443"
    for bad in ("spark:", "spark://", "mysql://x"):
        with pytest.raises(ValidationError, match="warehouse must be duckdb:///FILE, postgresql://USER@HOST/DB, "
                                                  r"spark://HOST:PORT or spark:MASTER \(such as spark:local\[2\]\)"):
            SqlTraitConfig(key="k", warehouse=bad, query="q")
