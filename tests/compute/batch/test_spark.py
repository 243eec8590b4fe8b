"""Spark (local mode) gives the reference evaluator's answers, on a smaller sample than DuckDB.

pyspark is the ``spark`` extra, which ``make`` installs with the dev tools; one Spark session
serves the module (starting one takes tens of seconds, and a query minutes on a loaded 2-core
machine, hence the long timeouts). A few random definition sets and
streams from the shared generators, each checked at two moments, plus a fixed case covering
every trait kind and a funnel.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings

from tests.compute.batch.test_engines_vs_reference import MOMENTS, _feed, _table
from tests.compute.realtime.conftest import D, Harness, S, defs
from tests.compute.realtime.test_engine_vs_reference import OPS, definition_sets
from traitsync.compute.batch import compile_definitions
from traitsync.compute.batch.inputs import input_tables, read_tables, write_parquet
from traitsync.compute.batch.runners import run_spark_on, spark_session
from traitsync.definitions import Definitions


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    try:
        import pyspark  # noqa: F401
    except ImportError:  # make installs the spark extra: a missing pyspark is a broken venv, not a skip
        pytest.fail("pyspark is not installed: run `make .venv/.installed-stamp` (it installs '.[dev,spark]')")
    session = spark_session("local[1]")
    yield session
    session.stop()


def _spark_table(spark: Any, h: Harness, as_of: int, tmp: Path) -> dict[str, dict[str, Any]]:
    query = compile_definitions(h.definitions, as_of, created_at={k: h.created_at(k) for k in h.definitions.order})
    folder = tmp / uuid.uuid4().hex
    write_parquet(read_tables(h.db, query.event_names, as_of), folder)
    return _table(h, run_spark_on(spark, folder, query))


@pytest.mark.timeout(1800)
def test_every_trait_kind_and_a_funnel(spark: Any, tmp_path: Path) -> None:
    h = Harness(f"sqlite:///{tmp_path}/s.db", defs("""
computed_traits:
  - {key: spend, kind: aggregation, event: Order, property: total, function: sum, window: 30d}
  - {key: avg_spend, kind: aggregation, event: Order, property: total, function: avg}
  - {key: fav, kind: most_frequent, event: Order, property: sku, min_frequency: 1}
  - {key: skus, kind: unique_list, event: Order, property: sku}
  - {key: first_sku, kind: first, event: Order, property: sku}
  - {key: top_sku, kind: aggregation, event: Order, property: sku, function: max, value_type: string}
  - {key: n, kind: event_counter, event: Order}
audiences:
  - key: big
    condition:
      all: [{trait: {key: spend, op: greater_than, value: 50}}, {trait: {key: plan, op: equals, value: gold}}]
  - key: abandoned
    query: "event('Added').where(event('Order').within(parent: 1 days).count() = 0).within(7 days).count() >= 1"
"""))
    try:
        h.engine.prepare()
        h.identify("u1", email="a@b.c", plan="gold")
        h.track("u1", "Order", total=30, sku="a")
        h.track("u1", "Order", total=25.5, sku="b")
        h.track("u1", "Order", sku="a")
        h.track("u2", "Added", t=h.clock.ms - 3 * D)
        h.identify("u2", email="x@y.z")
        h.sync()
        for as_of in (h.clock.ms - 2 * D,):
            expected = {pid: h.expected(pid, as_of) for pid in h.profiles()}
            assert _spark_table(spark, h, as_of, tmp_path) == expected
    finally:
        h.close()


@pytest.mark.timeout(3600)
@settings(max_examples=int(os.environ.get("SPARK_EXAMPLES", "1")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(definitions=definition_sets(), ops=OPS, moments=MOMENTS)
def test_spark_equals_reference(spark: Any, tmp_path: Path, definitions: Definitions, ops: list[Any],
                                moments: list[int]) -> None:
    h = Harness(f"sqlite:///{tmp_path}/r{uuid.uuid4().hex}.db", definitions)
    try:
        _feed(h, ops)
        for offset in moments[:1]:
            as_of = h.clock.ms + offset * S
            expected = {pid: h.expected(pid, as_of) for pid in h.profiles()}
            assert _spark_table(spark, h, as_of, tmp_path) == expected
    finally:
        h.close()


@pytest.mark.timeout(1800)
def test_accounts_on_spark(spark: Any, tmp_path: Path) -> None:
    """Account traits (a sum and a ranked pick over the users' events), an account funnel, account
    traits and ANY / ALL / none over the users, at two moments: one query, as DuckDB runs it."""
    from tests.compute.batch.accounts_harness import AccountStore
    from tests.compute.batch.test_accounts_vs_reference import feed

    definitions = defs("""
computed_traits:
  - {key: spend, kind: aggregation, event: Order, property: total, function: sum}
  - {key: acc_spend, kind: aggregation, event: Order, property: total, function: sum, level: account}
  - {key: acc_fav, kind: most_frequent, event: Order, property: sku, level: account}
audiences:
  - {key: buyer, query: "event('Order').count() >= 1"}
  - key: big
    level: account
    condition:
      all:
        - {computed_trait: {key: acc_spend, op: greater_than, value: 20}}
        - {trait: {key: plan, op: equals, value: gold}}
  - {key: any_big_spender, level: account, query: "ANY trait('spend') > 20"}
  - {key: all_buy, level: account, query: "ALL audience('buyer')"}
  - {key: none_buy, level: account, query: "ALL NOT audience('buyer')"}
  - key: carted
    level: account
    query: "event('Added').where(event('Order').within(parent: 1 days).count() = 0).count() >= 1"
""")
    store = AccountStore(f"sqlite:///{tmp_path}/acc.db", definitions)
    try:
        feed(store, [("group", "u1", "g1", "gold"), ("group", "u2", "g1", None), ("group", "u2", "g2", "free"),
                     ("group", "a1", "g3", None), ("track", "u1", "Order", -5, {"total": 30, "sku": "a"}),
                     ("track", "u2", "Order", -2, {"total": 2.5, "sku": "b"}),
                     ("track", "u2", "Order", 0, {"total": 1, "sku": "b"}), ("track", "a1", "Added", -3, {}),
                     ("tick", 3)])
        for as_of in (store.ms - 3 * S, store.ms + D):
            query = compile_definitions(definitions, as_of)
            folder = tmp_path / uuid.uuid4().hex
            write_parquet(read_tables(store.db, query.event_names, as_of,
                                      tables=input_tables(accounts=query.accounts, events_from=False)), folder)
            assert store.table(run_spark_on(spark, folder, query)) == store.expected(as_of, {})
    finally:
        store.close()


@pytest.mark.timeout(1800)
def test_events_from_an_export_and_a_spark_sql_trait(spark: Any, tmp_path: Path) -> None:
    """Spark reads the events from ``log export --format parquet`` files (raw identifiers resolved
    through the store) with DuckDB's answers; an SQL trait queries Parquet through Spark SQL."""
    from traitsync.compute.batch.event_files import locate
    from traitsync.compute.batch.inputs import PROFILE_TABLES
    from traitsync.compute.batch.runners import run_duckdb
    from traitsync.compute.batch.sql_traits import SqlTraitConfig, run_sql_trait
    from traitsync.log.event_log import EventLog
    from traitsync.log.export import export_parquet

    h = Harness(f"sqlite:///{tmp_path}/e.db", defs("""
computed_traits:
  - {key: spend, kind: aggregation, event: Order, property: total, function: sum, window: 30d}
  - {key: first_sku, kind: first, event: Order, property: sku}
audiences:
  - {key: buyers, condition: {performed: {event: Order, at_least: 2}}}
"""))
    try:
        h.engine.prepare()
        h.identify("u1", plan="gold")
        h.track("u1", "Order", total=30, sku="a")
        h.track("u1", "Order", total=25.5, sku="b")
        h.track("u2", "Order", total=7, sku="c", t=h.clock.ms - 40 * D)
        h.sync()
        lake = tmp_path / "lake"
        lake.mkdir()
        assert export_parquet(EventLog(h.db), lake / "part-0.parquet") == 4
        query = compile_definitions(h.definitions, h.clock.ms)
        folder = tmp_path / "profiles"
        write_parquet(read_tables(h.db, query.event_names, query.as_of_ms, tables=PROFILE_TABLES), folder)
        got = run_spark_on(spark, folder, query, events_from=locate(f"file://{lake}"))
        assert _table(h, got) == _table(h, run_duckdb(h.db, query))
        assert _table(h, got)[h.profile_of("u1")]["buyers"] is True

        facts = tmp_path / "facts.parquet"
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({"user_id": ["u1", "ghost"], "tier": ["gold", "free"], "ltv": [120.5, 0.0]}), facts)
        trait = SqlTraitConfig(key="facts", warehouse="spark:local[1]",
                               query=f"SELECT user_id, tier, ltv FROM parquet.`{facts}`")
        run = run_sql_trait(h.db, trait, now_ms=h.clock.ms)
        assert (run.rows, run.matched, run.unmatched, run.changed) == (2, 1, 1, 1)
        conn = h.db.connect()
        try:
            [(pid, value)] = conn.fetchall("SELECT profile_id, value FROM computed_values WHERE computation_key = ?",
                                           ("facts",))
        finally:
            conn.close()
        assert pid == h.profile_of("u1")
        assert json.loads(value) == {"tier": "gold", "ltv": 120.5}
    finally:
        h.close()
