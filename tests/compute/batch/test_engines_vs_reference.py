"""Property test: the batch engine equals the reference evaluator, and the realtime engine at "now".

Definitions and event streams come from the realtime property test's generators (every trait
kind, counted conditions with ``within`` / ``between`` windows, funnels, trait and membership
references, and/or/not; late events, trait updates, merges). After the stream, the batch query is
compiled at several random moments (past, now, later) and run on DuckDB (and PostgreSQL);
every profile's every value must equal the reference evaluator's at that moment, with the same
creation times (history rule) and eligibility. At "now" it must also equal what the realtime
engine stored.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compute.realtime.conftest import Harness, S
from tests.compute.realtime.test_engine_vs_reference import OPS, _who, definition_sets
from traitsync.compute.batch import compile_definitions
from traitsync.compute.batch.runners import Row, run_duckdb, run_postgres
from traitsync.definitions import Definitions
from traitsync.store.migrate import forget_migrations


def _feed(h: Harness, ops: list[Any]) -> None:
    h.engine.prepare()
    for op in ops:
        if op[0] == "track":
            h.send({"type": "track", **_who(op[1]), "event": op[2], "t": h.clock.ms + op[3] * S,
                    "properties": op[4]})
        elif op[0] == "plan":
            h.send({"type": "identify", "userId": op[1], "traits": {"plan": op[2]}})
        elif op[0] == "link":
            h.send({"type": "identify", "userId": op[1], "anonymousId": op[2], "traits": {}})
        else:
            h.clock.ms += op[1] * S
    h.sync()
    h.engine.fire_due(h.clock.ms)


def _table(h: Harness, rows: list[Row]) -> dict[str, dict[str, Any]]:
    """Every profile's every value, absent ones filled as the reference reports them."""
    out = {pid: {k: (False if h.definitions[k].computation_class == "audience" else None)
                 for k in h.definitions.order} for pid in h.profiles()}
    for key, pid, value in rows:
        out[pid][key] = value
    return out


def _check(h: Harness, engines: list[str], offsets: list[int]) -> None:
    created = {k: h.created_at(k) for k in h.definitions.order}
    for offset in [0, *offsets]:
        as_of = h.clock.ms + offset * S
        query = compile_definitions(h.definitions, as_of, created_at=created)
        expected = {pid: h.expected(pid, as_of) for pid in h.profiles()}
        for engine in engines:
            rows = run_duckdb(h.db, query) if engine == "duckdb" else run_postgres(h.db, query)
            got = _table(h, rows)
            for pid in expected:
                assert got[pid] == expected[pid], (engine, offset, pid)
                _same_json(got[pid], expected[pid])
            if offset == 0:
                for pid in expected:
                    assert got[pid] == h.actual(pid), (engine, "realtime", pid)


def _same_json(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Equal AND the same JSON (``5`` is not ``5.0`` on the wire)."""
    import orjson

    for key in expected:
        assert orjson.dumps(got[key]) == orjson.dumps(expected[key]), key


def reset_schema(pg_url: str) -> None:
    """An empty schema for each example (hypothesis reuses the function-scoped ``pg_url``)."""
    import psycopg

    from tests.conftest import PG_URL

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS batch_t CASCADE")
        schema = conn.execute("SELECT current_schema()").fetchone()
        assert schema is not None
        conn.execute(f"DROP SCHEMA {schema[0]} CASCADE")
        conn.execute(f"CREATE SCHEMA {schema[0]}")
    forget_migrations()
    assert PG_URL


MOMENTS = st.lists(st.integers(-40, 40), min_size=1, max_size=3)


@settings(max_examples=int(os.environ.get("BATCH_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(definitions=definition_sets(), ops=OPS, moments=MOMENTS)
def test_duckdb_equals_reference_and_realtime(tmp_path: Any, definitions: Definitions, ops: list[Any],
                                              moments: list[int]) -> None:
    h = Harness(f"sqlite:///{tmp_path}/b{uuid.uuid4().hex}.db", definitions)
    try:
        _feed(h, ops)
        _check(h, ["duckdb"], moments)
    finally:
        h.close()


@pytest.mark.postgres
@settings(max_examples=int(os.environ.get("BATCH_PG_EXAMPLES", "10")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(definitions=definition_sets(), ops=OPS, moments=MOMENTS)
def test_postgres_and_duckdb_equal_reference_on_postgres(pg_url: str, definitions: Definitions, ops: list[Any],
                                                         moments: list[int]) -> None:
    reset_schema(pg_url)
    h = Harness(pg_url, definitions)
    try:
        _feed(h, ops)
        _check(h, ["postgres", "duckdb"], moments)
    finally:
        h.close()
