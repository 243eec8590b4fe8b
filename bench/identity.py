"""Identity resolution throughput: N events over N/5 people, on SQLite and PostgreSQL.

Mix (of events): ~60% anonymous-only, ~30% identified (userId + anonymousId), ~10% involved
in merges (a second device's anonymous id, later tied to the user). Prints, per backend, the
ingest rate of the same run (the baseline: how fast the log is filled), the resolution rate,
their ratio, and the resolution rate per CPU-second of this process (steadier than wall time on
a shared machine; on PostgreSQL it leaves out the server's CPU), as a markdown table.

    .venv/bin/python bench/identity.py --events 1000000
    .venv/bin/python bench/identity.py --events 100000 --backend sqlite
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg

from traitsync.identity import IdentityWorker, default_identity_config
from traitsync.log.event_log import EventLog
from traitsync.store.database import Database

PG_URL = os.environ.get("TRAITSYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
#: Issue 4's targets (events/s resolved), per backend.
TARGETS = {"sqlite": 30_000, "postgresql": 15_000}


def messages(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    people = max(1, n // 5)
    base = 1_704_067_200_000
    out: list[dict[str, Any]] = []
    for i in range(n):
        p = rnd.randrange(people)
        roll = rnd.random()
        msg: dict[str, Any] = {"type": "track", "event": "Viewed", "messageId": f"b{i}",
                               "timestamp": _iso(base + i * 10), "properties": {"n": i}}
        if roll < 0.60:
            msg["anonymousId"] = f"a{p}"
        elif roll < 0.90:
            msg["userId"], msg["anonymousId"] = f"u{p}", f"a{p}"
        elif roll < 0.95:
            msg["anonymousId"] = f"d{p}"
        else:
            msg["userId"], msg["anonymousId"] = f"u{p}", f"d{p}"
        out.append(msg)
    return out


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + f".{ms % 1000:03d}Z"


def run(db: Database, msgs: list[dict[str, Any]], chunk: int) -> dict[str, float]:
    log = EventLog(db)
    t0 = time.perf_counter()
    for start in range(0, len(msgs), 5000):
        log.append_messages("src_bench", msgs[start:start + 5000])
    ingest = time.perf_counter() - t0
    worker = IdentityWorker(db, default_identity_config(), chunk_size=chunk)
    t0 = time.perf_counter()
    c0 = time.process_time()
    done = 0
    while True:
        n = worker.run_once()
        if n == 0:
            break
        done += n
    resolve = time.perf_counter() - t0
    cpu = time.process_time() - c0
    conn = db.connect()
    profiles = conn.scalar("SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL")
    merges = conn.scalar("SELECT COUNT(*) FROM identity_merges")
    conn.close()
    worker.close()
    return {"events": done, "ingest_eps": len(msgs) / ingest, "resolve_eps": done / resolve,
            "resolve_s": resolve, "cpu_eps": done / cpu if cpu else 0.0, "profiles": float(profiles),
            "merges": float(merges)}


HEADER = ("| backend | events | chunk | ingest ev/s | resolve ev/s | resolve / ingest | resolve s | "
          "resolve ev/CPU-s | target | vs target | profiles | merges |\n"
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")


def report(name: str, r: dict[str, float], chunk: int) -> None:
    """One markdown table row (the header is printed once, before the first run)."""
    target = TARGETS[name]
    print(f"| {name} | {int(r['events']):,} | {chunk:,} | {r['ingest_eps']:,.0f} | {r['resolve_eps']:,.0f} | "
          f"{r['resolve_eps'] / r['ingest_eps']:.2f} | {r['resolve_s']:.1f} | {r['cpu_eps']:,.0f} | "
          f"{target:,} | {r['resolve_eps'] / target:.2f} | {int(r['profiles']):,} | {int(r['merges']):,} |",
          flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=50_000,
                        help="events per worker transaction (fewer commits: each rewrites the random index pages)")
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    msgs = messages(args.events)
    print(HEADER, flush=True)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            report("sqlite", run(Database(f"sqlite:///{Path(tmp) / 'bench.db'}"), msgs, args.chunk), args.chunk)
    if args.backend in ("postgresql", "both"):
        schema = f"ts_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in PG_URL else "?"
            db = Database(f"{PG_URL}{sep}options=-csearch_path%3D{schema}")
            report("postgresql", run(db, msgs, args.chunk), args.chunk)
        finally:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
