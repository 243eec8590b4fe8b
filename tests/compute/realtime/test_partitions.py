"""Engine partitions on PostgreSQL: two workers give exactly the results of one engine.

The same log is run through identity and the engine in lockstep in two fresh schemas: once
with the single engine, once with two partitioned workers (four partitions, two each). The log
has anonymous profiles merged into identified ones, several of them across partitions.
Computed values, the multiset of (computation, profile, value, version) results and the
messages activation would build from them (so their messageIds) must be identical.
"""

from __future__ import annotations

import secrets
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compute.realtime.conftest import T0, Clock, D, defs
from tests.compute.realtime.test_message_ids import DEFS, log_messages, messages_by_id
from tests.conftest import PG_URL
from traitsync.activation.types import Identifier
from traitsync.compute.realtime import RealtimeEngine
from traitsync.compute.realtime.partitioned import PartitionedEngine
from traitsync.compute.realtime.partitions import Partition, partition_of, partition_sql
from traitsync.identity import IdentityWorker, default_identity_config
from traitsync.log.event_log import EventLog
from traitsync.store.database import Database
from traitsync.store.migrate import forget_migrations

PARTITIONS = 4


@pytest.fixture
def two_pg_urls() -> Iterator[tuple[str, str]]:
    schemas = [f"ts_{secrets.token_hex(6)}" for _ in range(2)]
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        for s in schemas:
            admin.execute(f"CREATE SCHEMA {s}")
    sep = "&" if "?" in PG_URL else "?"
    forget_migrations()
    try:
        a, b = (f"{PG_URL}{sep}options={quote(f'-csearch_path={s}')}" for s in schemas)
        yield a, b
    finally:
        forget_migrations()
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            for s in schemas:
                admin.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=st.lists(st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)),
                            min_size=1, max_size=40), min_size=1, max_size=20),
       count=st.integers(1, 64))
def test_python_and_postgresql_agree_on_the_partition(pg_url: str, ids: list[str], count: int) -> None:
    conn = Database(pg_url).connect()
    try:
        for pid in ids:
            assert conn.scalar(f"SELECT {partition_sql('?::text', count)}", (pid,)) == partition_of(pid, count)
    finally:
        conn.close()


def _run(url: str, messages: list[dict[str, Any]], partitioned: bool) -> dict[str, Any]:
    """Identity and engine(s) in lockstep over the log, then a day of timers; what the store holds."""
    db = Database(url)
    log = EventLog(db)
    for i in range(0, len(messages), 50):
        log.append_messages("src_web", messages[i:i + 50], received_at_ms=T0)
    clock = Clock(T0)
    identity = IdentityWorker(db, default_identity_config(), chunk_size=25)
    workers: list[Any]
    if partitioned:
        workers = [PartitionedEngine(db, defs(DEFS), partitions=PARTITIONS, clock=clock) for _ in range(2)]
        for w in (*workers, *workers):  # the first takes all, gives half back once it sees the second
            w.balance()
        assert sorted(len(w.owned) for w in workers) == [2, 2]
    else:
        workers = [RealtimeEngine(db, defs(DEFS), clock=clock)]
    try:
        while identity.run_once(25) > 0:
            while sum(w.run_once() for w in workers) > 0:
                pass
        for _ in range(4):
            clock.ms += D // 4
            if partitioned:
                while sum(w.run_once() for w in workers) > 0:
                    pass
            else:
                workers[0].fire_due(clock.ms)
        conn = db.connect()
        values = conn.fetchall("SELECT profile_id, computation_key, value, version FROM computed_values")
        rows = conn.fetchall('SELECT computation_id, computation_key, computation_class, profile_id, new_value, '
                             'version, as_of_ms FROM computation_results ORDER BY "offset"')
        merges = conn.fetchall("SELECT survivor_id, absorbed_id FROM identity_merges")
        ids: dict[str, list[Identifier]] = {}
        for pid, t, v in conn.fetchall("SELECT profile_id, id_type, value FROM profile_external_ids "
                                       "ORDER BY event_offset, id_type, value"):
            ids.setdefault(str(pid), []).append(Identifier(str(t), str(v)))
        conn.close()
    finally:
        for w in workers:
            w.close()
        identity.close()
    results = [(*r[:4], orjson.loads(r[4]), int(r[5]), int(r[6]), ids.get(str(r[3]), [])) for r in rows]
    return {"values": sorted(tuple(v) for v in values), "results": results, "merges": merges}


def test_two_workers_give_exactly_the_results_of_one_engine(two_pg_urls: tuple[str, str]) -> None:
    messages = log_messages(seed=11, n=500)
    one = _run(two_pg_urls[0], messages, partitioned=False)
    two = _run(two_pg_urls[1], messages, partitioned=True)
    across = [(s, a) for s, a in one["merges"] if partition_of(str(s), PARTITIONS) != partition_of(str(a), PARTITIONS)]
    assert across, "the stream must merge profiles across partitions"
    assert len(one["values"]) > 30
    assert two["values"] == one["values"]

    def key(r: tuple[Any, ...]) -> tuple[Any, ...]:
        return (r[1], r[3], repr(r[4]), r[5])

    assert Counter(map(key, two["results"])) == Counter(map(key, one["results"]))
    assert messages_by_id(two["results"]) == messages_by_id(one["results"])
    last: dict[tuple[str, str], int] = {}
    for r in two["results"]:  # in offset order, each (profile, computation) only moves forward
        assert r[5] > last.get((r[3], r[1]), -1)
        last[(r[3], r[1])] = r[5]


def test_a_partition_reads_only_its_profiles_and_the_merges_touching_them() -> None:
    part = Partition(1, 4)
    assert part.events_consumer == "realtime.p1/4"
    assert Partition().events_consumer == "realtime" and Partition().where("x") == ""
    mine = next(f"p{i}" for i in range(100) if partition_of(f"p{i}", 4) == 1)
    assert part.owns(mine) and not Partition(2, 4).owns(mine)
