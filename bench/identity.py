"""Identity resolution throughput: N events over N/5 people, on SQLite and PostgreSQL.

Mix (of events): ~60% anonymous-only, ~30% identified (userId + anonymousId), ~10% involved
in merges (a second device's anonymous id, later tied to the user). Prints ingest and
resolution rates and their ratio.

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
    done = 0
    while True:
        n = worker.run_once()
        if n == 0:
            break
        done += n
    resolve = time.perf_counter() - t0
    conn = db.connect()
    profiles = conn.scalar("SELECT COUNT(*) FROM profiles WHERE merged_into IS NULL")
    merges = conn.scalar("SELECT COUNT(*) FROM identity_merges")
    conn.close()
    worker.close()
    return {"events": done, "ingest_eps": len(msgs) / ingest, "resolve_eps": done / resolve,
            "profiles": float(profiles), "merges": float(merges)}


def report(name: str, r: dict[str, float]) -> None:
    print(f"{name:10s} events={int(r['events']):,} resolve={r['resolve_eps']:,.0f} ev/s "
          f"ingest={r['ingest_eps']:,.0f} ev/s ratio={r['resolve_eps'] / r['ingest_eps']:.2f} "
          f"profiles={int(r['profiles']):,} merges={int(r['merges']):,}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    msgs = messages(args.events)
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            report("sqlite", run(Database(f"sqlite:///{Path(tmp) / 'bench.db'}"), msgs, args.chunk))
    if args.backend in ("postgresql", "both"):
        schema = f"ts_bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(PG_URL, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        try:
            sep = "&" if "?" in PG_URL else "?"
            report("postgresql", run(Database(f"{PG_URL}{sep}options=-csearch_path%3D{schema}"), msgs, args.chunk))
        finally:
            with psycopg.connect(PG_URL, autocommit=True) as conn:
                conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
