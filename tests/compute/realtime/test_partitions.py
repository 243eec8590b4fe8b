"""Engine partitions on PostgreSQL: two workers give exactly the results of one engine, and a
killed worker's partitions resume in the other within seconds, losing and repeating nothing.

The same log is run through identity and the engine in lockstep in two fresh schemas: once
with the single engine, once with two partitioned workers (four partitions, two each). The log
has anonymous profiles merged into identified ones, several of them across partitions.
Computed values, the multiset of (computation, profile, value, version) results and the
messages activation would build from them (so their messageIds) must be identical.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.compute.realtime.conftest import T0, Clock, D, defs
from tests.compute.realtime.test_message_ids import DEFS, log_messages, messages_by_id
from tests.conftest import BASIC_CONFIG, PG_URL
from traitsync.activation.types import Identifier
from traitsync.compute.realtime import RealtimeEngine
from traitsync.compute.realtime.ownership import PARTITION_BASE
from traitsync.compute.realtime.partitioned import PartitionedEngine
from traitsync.compute.realtime.partitions import Partition, partition_of, partition_sql
from traitsync.identity import IdentityWorker, default_identity_config, run_until_caught_up
from traitsync.log.event_log import EventLog
from traitsync.store.database import Database
from traitsync.store.migrate import forget_migrations

PARTITIONS = 4


@pytest.fixture
def two_pg_urls() -> Iterator[tuple[str, str]]:
    with _schemas() as urls:
        yield urls


@contextmanager
def _schemas() -> Iterator[tuple[str, str]]:
    """Two fresh PostgreSQL schemas (the same log goes into each)."""
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


def _run(url: str, messages: list[dict[str, Any]], partitioned: bool, partitions: int = PARTITIONS,
         workers_n: int = 2) -> dict[str, Any]:
    """Identity and engine(s) in lockstep over the log, then a day of timers; what the store holds."""
    db = Database(url)
    log = EventLog(db)
    for i in range(0, len(messages), 50):
        log.append_messages("src_web", messages[i:i + 50], received_at_ms=T0)
    clock = Clock(T0)
    identity = IdentityWorker(db, default_identity_config(), chunk_size=25)
    workers: list[Any]
    if partitioned:
        workers = [PartitionedEngine(db, defs(DEFS), partitions=partitions, clock=clock) for _ in range(workers_n)]
        for w in (*workers, *workers):  # the first takes all, gives some back once it sees the others
            w.balance()
        share = -(-partitions // workers_n)
        assert sum(len(w.owned) for w in workers) == partitions
        assert all(len(w.owned) <= share for w in workers)
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
    results = [(*r[:4], None if r[4] is None else orjson.loads(r[4]), int(r[5]), int(r[6]), ids.get(str(r[3]), []))
               for r in rows]
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


@settings(max_examples=3, deadline=None)
@given(seed=st.integers(0, 10_000), partitions=st.sampled_from([2, 3, 5, 8]), workers_n=st.sampled_from([2, 3]))
def test_any_split_gives_the_results_of_one_engine(seed: int, partitions: int, workers_n: int) -> None:
    messages = log_messages(seed=seed, n=250)
    with _schemas() as (one_url, many_url):
        one = _run(one_url, messages, partitioned=False)
        many = _run(many_url, messages, partitioned=True, partitions=partitions, workers_n=workers_n)
    assert many["values"] == one["values"]
    assert messages_by_id(many["results"]) == messages_by_id(one["results"])


def test_a_partition_reads_only_its_profiles_and_the_merges_touching_them() -> None:
    part = Partition(1, 4)
    assert part.events_consumer == "realtime.p1/4"
    assert Partition().events_consumer == "realtime" and Partition().where("x") == ""
    mine = next(f"p{i}" for i in range(100) if partition_of(f"p{i}", 4) == 1)
    assert part.owns(mine) and not Partition(2, 4).owns(mine)


KILL_DEFS = """
engine: {partitions: 8}
computed_traits:
  - key: orders
    query: "event('Order').count()"
  - key: spend
    query: "event('Order').sum(property('total'))"
  - key: pages
    query: "event('Page').unique(property('url'))"
audiences:
  - key: regular
    query: "event('Order').count() >= 3"
"""


def _stream(n: int, users: int = 150, seed: int = 3) -> list[dict[str, Any]]:
    """Orders and page views; a third of the users browse anonymously first, then log in (a merge)."""
    import random

    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        u = rnd.randrange(users)
        who: dict[str, Any] = {"userId": f"u{u}"}
        if u % 3 == 0:
            r = rnd.random()
            who = {"anonymousId": f"a{u}"} if r < 0.5 else {"userId": f"u{u}", "anonymousId": f"a{u}"}
        if rnd.random() < 0.6:
            msg = {"type": "track", **who, "event": "Order", "properties": {"total": rnd.randrange(60)}}
        else:
            msg = {"type": "track", **who, "event": "Page", "properties": {"url": f"/p{rnd.randrange(4)}"}}
        out.append({**msg, "messageId": f"m{i}"})
    return out


def _owners(db: Database) -> dict[int, int]:
    """Backend pid -> how many of the eight partition locks it holds."""
    conn = db.connect()
    try:
        rows = conn.fetchall(
            "SELECT pid, COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND granted AND objsubid = 2 "
            "AND classid = hashtext(current_schema())::oid AND objid BETWEEN ? AND ? GROUP BY pid",
            (PARTITION_BASE, PARTITION_BASE + 7))
        return {int(p): int(n) for p, n in rows}
    finally:
        conn.close()


def _caught_up(db: Database, appended: int) -> bool:
    conn = db.connect()
    try:
        seen = {str(c): int(o) for c, o in conn.fetchall('SELECT consumer, "offset" FROM checkpoints')}
        head = int(conn.scalar('SELECT MAX("offset") FROM events') or 0)
        changes = int(conn.scalar('SELECT MAX("offset") FROM profile_changes') or 0)
        events = int(conn.scalar("SELECT COUNT(*) FROM events") or 0)
    finally:
        conn.close()
    parts = [Partition(i, 8) for i in range(8)]
    return (events == appended and seen.get("identity") == head
            and all(seen.get(p.events_consumer) == head for p in parts)
            and all(seen.get(p.changes_consumer) == changes for p in parts)
            and seen.get("realtime.changes") == changes)


def _worker(config: Path, url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        command = [sys.executable, "-m", "traitsync.cli", "serve", "-c", str(config), "--database-url", url,
                   "--role", "worker", "--log-level", "warning"]
        return subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "TRAITSYNC_LOG_FORMAT": "json"})


def _wait(check: Any, timeout: float, what: str) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if check():
            return time.monotonic() - start
        time.sleep(0.05)
    raise AssertionError(f"{what} not within {timeout}s")


def test_a_killed_workers_partitions_resume_elsewhere_losing_and_repeating_nothing(
        two_pg_urls: tuple[str, str], tmp_path: Path) -> None:
    url, reference_url = two_pg_urls
    config = tmp_path / "traitsync.yaml"
    config.write_text(BASIC_CONFIG + KILL_DEFS)
    messages = _stream(1600)
    db = Database(url)
    log = EventLog(db)
    log.append_messages("src_web", messages[:400])
    procs = [_worker(config, url, tmp_path / f"worker-{i}.log") for i in range(2)]
    try:
        # Slow on a busy machine: the workers import the whole server first.
        _wait(lambda: sorted(_owners(db).values()) == [4, 4], 120, "two workers owning four partitions each")
        for i in range(400, 1000, 50):
            log.append_messages("src_web", messages[i:i + 50])
            time.sleep(0.05)
        procs[0].send_signal(signal.SIGKILL)  # mid-stream: its partitions have unread events
        procs[0].wait(10)
        taken = _wait(lambda: list(_owners(db).values()) == [8], 10, "the survivor owning every partition")
        print(f"partitions taken over in {taken:.2f}s")
        assert taken < 8  # about one second on a quiet machine
        for i in range(1000, len(messages), 50):
            log.append_messages("src_web", messages[i:i + 50])
        _wait(lambda: _caught_up(db, len(messages)), 120, "the engine catching up")
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                p.wait(20)
    ref = Database(reference_url)
    EventLog(ref).append_messages("src_web", messages)
    run_until_caught_up(IdentityWorker(ref, default_identity_config()))
    engine = RealtimeEngine(ref, defs(KILL_DEFS))
    while engine.run_once() > 0:
        pass
    engine.close()

    def snapshot(d: Database) -> tuple[list[Any], list[Any]]:
        conn = d.connect()
        try:
            # Versions follow the chunking (an audience entered mid-chunk takes the chunk's last
            # offset), which a kill changes; values must not.
            values = sorted(tuple(r) for r in conn.fetchall(
                "SELECT profile_id, computation_key, value FROM computed_values"))
            rows = conn.fetchall('SELECT computation_key, profile_id, version FROM computation_results '
                                 'ORDER BY "offset"')
            last: dict[tuple[str, str], int] = {}
            backwards = []  # a repeated or out-of-order change for one (computation, profile)
            for key, pid, version in rows:
                if int(version) <= last.get((key, pid), -1):
                    backwards.append((key, pid, version))
                last[(key, pid)] = int(version)
            return values, backwards
        finally:
            conn.close()

    values, dupes = snapshot(db)
    expected, _ = snapshot(ref)
    assert len(expected) > 300
    assert dupes == []
    assert values == expected


def _result(key: str) -> tuple[Any, ...]:
    return (key, "cid", "trait", "p1", None, "1", 1, T0, "m1", T0)


def test_results_of_concurrent_engines_commit_in_offset_order(pg_url: str) -> None:
    """A second engine's results wait for the first's commit, so no lower offset commits late."""
    import threading

    from traitsync.compute.realtime.store import Output
    from traitsync.store.migrate import migrate

    db = Database(pg_url)
    migrate(db)
    first, second = db.connect(), db.connect()
    try:
        Output(results=[_result("a")]).flush(first)  # inserted, not committed
        done = threading.Event()

        def other() -> None:
            Output(results=[_result("b")]).flush(second)
            second.commit()
            done.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert not done.wait(0.5), "the second engine's results must wait for the first to commit"
        first.commit()
        thread.join(10)
        assert done.is_set()
        rows = first.fetchall('SELECT computation_key FROM computation_results ORDER BY "offset"')
        assert [r[0] for r in rows] == ["a", "b"]
    finally:
        first.close()
        second.close()


def test_a_layout_changes_only_when_every_partition_stands_at_the_same_offsets(pg_url: str) -> None:
    from traitsync.compute.realtime.partitions import PartitionLayoutError, ensure_layout, stored_layout
    from traitsync.log.event_log import Checkpoints
    from traitsync.store.migrate import migrate

    db = Database(pg_url)
    migrate(db)
    conn = db.connect()
    try:
        with conn.transaction():
            Checkpoints.set(conn, "realtime", 40)
            Checkpoints.set(conn, "realtime.changes", 7)
            ensure_layout(conn, 4)  # one engine -> four partitions: each starts where the engine stood
        assert stored_layout(conn) == 4
        assert {Checkpoints.get(conn, Partition(i, 4).events_consumer) for i in range(4)} == {40}
        assert {Checkpoints.get(conn, Partition(i, 4).changes_consumer) for i in range(4)} == {7}
        conn.commit()
        with conn.transaction():
            Checkpoints.set(conn, Partition(2, 4).events_consumer, 55)  # one partition ahead
        with pytest.raises(PartitionLayoutError), conn.transaction():
            ensure_layout(conn, 8)
        with pytest.raises(PartitionLayoutError), conn.transaction():
            ensure_layout(conn, 1)
        with conn.transaction():
            for i in range(4):
                Checkpoints.set(conn, Partition(i, 4).events_consumer, 55)
        with pytest.raises(PartitionLayoutError), conn.transaction():
            ensure_layout(conn, 8, others_alive=True)  # workers of the old count still run
        with conn.transaction():
            ensure_layout(conn, 8)
        assert stored_layout(conn) == 8
        assert {Checkpoints.get(conn, Partition(i, 8).events_consumer) for i in range(8)} == {55}
    finally:
        conn.close()
