"""Identity + engine throughput on PostgreSQL with one and with two engine worker processes.

The same events (``bench/engine.py``'s generator and 40 definitions) are appended to two fresh
schemas; in each, identity resolves them all (one process: identity is serialised per store),
then N engine worker processes (``PartitionedEngine``, the same class ``serve --role worker``
runs) share the partitions until every partition has caught up. The workers start, import and
announce themselves before the clock starts, so process start-up is not measured. Both runs
must leave the same computed values (checked), and the ratio of the two-worker engine rate to
the one-worker rate is printed. The log append of the same run is the baseline, since the
machine may be shared.

    .venv/bin/python bench/partitions.py --events 100000 --profiles 10000 [--partitions 16]

``--stream`` measures what partitions cost on one machine instead: one worker, in one process,
follows the log as it grows (``--batch`` events appended at a time, identity then the engine),
once with one partition and once with ``--partitions``:

    .venv/bin/python bench/partitions.py --stream --events 3000 --profiles 3000 --batch 30
"""

from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

import psycopg

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from engine import definitions_yaml, messages  # noqa: E402
from traitsync.compute.realtime.partitioned import PartitionedEngine  # noqa: E402
from traitsync.compute.realtime.partitions import Partition  # noqa: E402
from traitsync.config.yaml_lines import load_yaml_text  # noqa: E402
from traitsync.definitions import load_definitions  # noqa: E402
from traitsync.identity import IdentityWorker, default_identity_config  # noqa: E402
from traitsync.log.event_log import EventLog  # noqa: E402
from traitsync.store.database import Database  # noqa: E402

PG_URL = os.environ.get("TRAITSYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")


def child(url: str, partitions: int, now_ms: int, go: Path) -> None:
    """One engine worker: announce itself, wait for ``go``, run until SIGTERM."""
    import threading

    db = Database(url)
    engine = PartitionedEngine(db, load_definitions(load_yaml_text(definitions_yaml())), partitions=partitions,
                               clock=lambda: now_ms / 1000, cache_profiles=200_000)
    engine.join()
    print("ready", flush=True)
    while not go.exists():
        time.sleep(0.01)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    engine.run(stop)


def _caught_up(db: Database, partitions: int) -> bool:
    conn = db.connect()
    try:
        seen = {str(c): int(o) for c, o in conn.fetchall('SELECT consumer, "offset" FROM checkpoints')}
        changes = int(conn.scalar('SELECT MAX("offset") FROM profile_changes') or 0)
    finally:
        conn.close()
    head = seen.get("identity", 0)
    return all(seen.get(p.events_consumer) == head and seen.get(p.changes_consumer) == changes
               for p in (Partition(i, partitions) for i in range(partitions)))


def _digest(db: Database) -> tuple[int, str]:
    conn = db.connect()
    try:
        rows = conn.fetchall("SELECT profile_id, computation_key, value FROM computed_values "
                             "ORDER BY profile_id, computation_key")
    finally:
        conn.close()
    return len(rows), hashlib.sha1(repr(rows).encode()).hexdigest()[:12]


def run(url: str, workers: int, partitions: int, msgs: list[dict[str, object]], now: int,
        tmp: Path) -> dict[str, float | int | str]:
    db = Database(url)
    log = EventLog(db)
    t0 = time.perf_counter()
    for start in range(0, len(msgs), 5000):
        log.append_messages("src_bench", msgs[start:start + 5000], received_at_ms=now)
    append = time.perf_counter() - t0
    identity = IdentityWorker(db, default_identity_config(), chunk_size=5000)
    t0 = time.perf_counter()
    while identity.run_once() > 0:
        pass
    resolve = time.perf_counter() - t0
    identity.close()
    go = tmp / f"go-{secrets.token_hex(4)}"
    procs = [subprocess.Popen([sys.executable, __file__, "--child", url, "--partitions", str(partitions),
                               "--now", str(now), "--go", str(go)], stdout=subprocess.PIPE, text=True)
             for _ in range(workers)]
    try:
        for p in procs:
            assert p.stdout is not None and p.stdout.readline().strip() == "ready"
        t0 = time.perf_counter()
        go.touch()
        while not _caught_up(db, partitions):
            time.sleep(0.05)
        compute = time.perf_counter() - t0
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
    count, digest = _digest(db)
    return {"append": append, "identity": resolve, "engine": compute, "values": count, "digest": digest}


def stream(url: str, partitions: int, msgs: list[dict[str, object]], now: int, batch: int) -> tuple[float, float]:
    """Wall and CPU seconds for one worker following the log ``batch`` events at a time."""
    db = Database(url)
    log = EventLog(db)
    identity = IdentityWorker(db, default_identity_config())
    engine = PartitionedEngine(db, load_definitions(load_yaml_text(definitions_yaml())), partitions=partitions,
                               clock=lambda: now / 1000)
    engine.balance()
    while engine.run_once():
        pass
    t0, c0 = time.perf_counter(), time.process_time()
    for start in range(0, len(msgs), batch):
        log.append_messages("src_bench", msgs[start:start + batch], received_at_ms=now)
        while identity.run_once():
            pass
        while engine.run_once():
            pass
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    engine.close()
    identity.close()
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--profiles", type=int, default=10_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--stream", action="store_true", help="one worker following the log: 1 vs --partitions")
    parser.add_argument("--batch", type=int, default=30, help="--stream: events appended at a time")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--now", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--go", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.partitions, args.now, Path(args.go))
        return
    now = int(time.time() * 1000)
    msgs = messages(args.events, args.profiles, now)
    schemas = [f"bench_{secrets.token_hex(5)}" for _ in range(2)]
    tmp = Path(os.environ.get("TMPDIR", "/tmp"))
    sep = "&" if "?" in PG_URL else "?"
    with psycopg.connect(PG_URL, autocommit=True) as admin:
        for s in schemas:
            admin.execute(f"CREATE SCHEMA {s}")
    urls = [f"{PG_URL}{sep}options={quote(f'-csearch_path={s}')}" for s in schemas]
    try:
        if args.stream:
            timed = {p: stream(u, p, msgs, now, args.batch) for p, u in zip((1, args.partitions), urls, strict=True)}
        else:
            out = {n: run(u, n, args.partitions, msgs, now, tmp) for n, u in zip((1, 2), urls, strict=True)}
    finally:
        with psycopg.connect(PG_URL, autocommit=True) as admin:
            for s in schemas:
                admin.execute(f"DROP SCHEMA IF EXISTS {s} CASCADE")
    n = args.events
    if args.stream:
        print(f"\n### One worker following the log on PostgreSQL: {n:,} events, {args.profiles:,} profiles, "
              f"{args.batch} at a time\n")
        print("| partitions | wall s | CPU s | events/s (wall) |\n|---:|---:|---:|---:|")
        for p, (wall, cpu) in timed.items():
            print(f"| {p} | {wall:.1f} | {cpu:.1f} | {n / wall:,.0f} |")
        return
    print(f"\n### Engine workers on PostgreSQL: {n:,} events, {args.profiles:,} profiles, 40 definitions, "
          f"{args.partitions} partitions\n")
    print("| engine worker processes | log append (baseline) | identity | engine | identity + engine "
          "| ratio to append |")
    print("|---:|---:|---:|---:|---:|---:|")
    for workers, r in out.items():
        append, ident, eng = float(r["append"]), float(r["identity"]), float(r["engine"])
        print(f"| {workers} | {n / append:,.0f} | {n / ident:,.0f} | {n / eng:,.0f} | {n / (ident + eng):,.0f} "
              f"| {(n / (ident + eng)) / (n / append):.2f} |")
    one, two = out[1], out[2]
    print(f"\nengine rate, two workers / one: {float(one['engine']) / float(two['engine']):.2f}; identity + engine: "
          f"{(float(one['identity']) + float(one['engine'])) / (float(two['identity']) + float(two['engine'])):.2f}")
    same = (one["values"], one["digest"]) == (two["values"], two["digest"])
    print(f"computed values: {one['values']:,} rows, {'identical' if same else 'DIFFERENT'} in both runs")
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
