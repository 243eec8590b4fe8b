"""Ingest benchmark: traitsync's durable Tracking API against two ceilings measured in the same run.

Load comes from ``wrk`` in a separate process (32 connections, batches of 100 ~600-byte track
events with unique messageIds, see ``bench/ingest.lua``). Each scenario starts its own server
subprocess on a fresh store. Two ceilings, each measured in the same run so that ratios mean
the same on any machine (and on a busy one):

* HTTP: a raw ASGI app on the same server stack that only parses the bodies (``bench/ceiling.py``);
* storage: a bare append of the same rows to a fresh log on the same backend, with no HTTP and
  no validation (``EventLog.append_rows`` in transactions of 3,200 rows, what 32 connections
  of 100 events share in one group commit).

Beside wall-clock rates it prints the server's CPU time per event (all its processes), which a
shared machine disturbs far less than wall time.

    .venv/bin/python bench/ingest.py [--duration 15] [--connections 32] [--workers 2] [--skip-postgres]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.profile_api import server_cpu_seconds  # noqa: E402  (the server's CPU, all its processes)

PY = sys.executable
PG_URL = os.environ.get("TRAITSYNC_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
WRITE_KEY = "bench-key"
AUTH = "Basic " + base64.b64encode(f"{WRITE_KEY}:".encode()).decode()


@dataclass
class Result:
    name: str
    requests_per_s: float
    events_per_s: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    stored: int | None = None
    cpu_us_per_event: float | None = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("installing wrk from Debian's packages ...", file=sys.stderr)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, capture_output=True)
    found = shutil.which("wrk")
    if not found:
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, capture_output=True)
        found = shutil.which("wrk")
    assert found, "wrk is required (apt-get install wrk)"
    return found


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run_wrk(wrk: str, port: int, *, duration: int, connections: int, batch: int, run_id: str) -> Result:
    env = {**os.environ, "BATCH": str(batch), "RUN": run_id, "AUTH": AUTH}
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s",
                          str(ROOT / "bench" / "ingest.lua"), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, env=env, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    status = re.search(r"STATUS non2xx=(\d+)", out)
    lat = re.search(r"LAT p50=([\d.]+) p99=([\d.]+)", out)
    assert status and lat, out
    per = max(batch, 1)
    return Result(name="", requests_per_s=rps, events_per_s=rps * per, p50_ms=float(lat.group(1)),
                  p99_ms=float(lat.group(2)), non_2xx=int(status.group(1)))


def start(cmd: list[str], port: int, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **(env or {})},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_up(f"http://127.0.0.1:{port}/healthz", proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()


def ceiling(wrk: str, args: argparse.Namespace, batch: int) -> Result:
    port = free_port()
    proc = start([PY, "-m", "uvicorn", "bench.ceiling:app", "--port", str(port), "--loop", "uvloop", "--http",
                  "httptools", "--log-level", "warning", "--no-access-log"], port)
    try:
        run_wrk(wrk, port, duration=2, connections=args.connections, batch=batch, run_id="warm")
        result = run_wrk(wrk, port, duration=args.duration, connections=args.connections, batch=batch,
                         run_id=secrets.token_hex(3))
    finally:
        stop(proc)
    result.name = "ceiling (raw ASGI + orjson, no storage)" + (" /v1/track" if batch == 0 else " /v1/batch")
    return result


def traitsync(wrk: str, args: argparse.Namespace, name: str, db_url: str, workdir: Path, *, batch: int,
              durability: str = "normal", workers: int = 1) -> Result:
    config = workdir / f"{secrets.token_hex(3)}.yaml"
    config.write_text(f"space_id: spa_bench\nsources:\n  - id: src_bench\n    write_key: {WRITE_KEY}\n"
                      f"storage:\n  durability: {durability}\n")
    port = free_port()
    proc = start([PY, "-m", "traitsync.cli", "serve", "-c", str(config), "--database-url", db_url, "--port",
                  str(port), "--log-level", "warning", "--workers", str(workers), "--role", "api"], port)
    try:
        run_wrk(wrk, port, duration=2, connections=args.connections, batch=batch, run_id="warm-" + name[:4])
        cpu_before = server_cpu_seconds(proc.pid)
        result = run_wrk(wrk, port, duration=args.duration, connections=args.connections, batch=batch,
                         run_id=secrets.token_hex(3))
        cpu = server_cpu_seconds(proc.pid) - cpu_before
        result.cpu_us_per_event = cpu / max(result.events_per_s * args.duration, 1) * 1e6
    finally:
        stop(proc)
    from traitsync.log import EventLog
    from traitsync.store import Database

    result.stored = EventLog(Database(db_url)).count()
    result.name = name
    return result


_STORED_BODY = (
    '{"type":"track","userId":"user_%d","anonymousId":"a7c1e2d4-%08d","event":"Product Viewed",'
    '"messageId":"%s","timestamp":"2026-11-20T10:%02d:%02d.000Z","properties":{"product_id":"sku_%d",'
    '"category":"Shoes","price":49.99,"currency":"USD","name":"Trail running shoe","brand":"Acme"},'
    '"context":{"library":{"name":"analytics.js","version":"4.1.0"},"ip":"203.0.113.5",'
    '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36",'
    '"page":{"path":"/p/%d","url":"https://shop.example.com/p/%d","title":"Trail running shoe"}},'
    '"originalTimestamp":"2026-11-20T10:%02d:%02d.000Z","receivedAt":"2026-12-01T00:00:00.000Z"}'
)


def storage_rows(count: int, run: str) -> list[tuple[str, str, str, str | None, str | None, str | None, int, int, str]]:
    """The rows traitsync stores for ``bench/ingest.lua``'s events, as the server would write them."""
    rows = []
    for n in range(count):
        user, minute, second, sku = (n * 7919) % 200000, n % 60, n % 60, n % 5000
        message_id = f"{run}-{n}"
        body = _STORED_BODY % (user, user, message_id, minute, second, sku, sku, sku, minute, second)
        rows.append((message_id, "src_bench", "track", "Product Viewed", f"user_{user}", f"a7c1e2d4-{user:08d}",
                     1_795_000_000_000 + n, 1_796_083_200_000, body))
    return rows


def storage_ceiling(name: str, db_url: str, seconds: float, group: int = 3200) -> Result:
    """Bare appends of the same rows, ``group`` per transaction, for ``seconds``: the storage ceiling."""
    from traitsync.log import EventLog
    from traitsync.store import Database

    db = Database(db_url)
    log = EventLog(db)
    conn = db.connect()
    rows = storage_rows(group * 8, "warm")
    for start_at in range(0, len(rows), group):  # warm-up: the first pages, the caches
        log.append_rows(conn, rows[start_at:start_at + group])
    written, run = 0, 0
    wall, cpu = time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        run += 1
        written += log.append_rows(conn, storage_rows(group, f"run{run}"))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    conn.close()
    rate = written / wall
    # For SQLite the insert runs in this process, so its CPU is the storage's; PostgreSQL's server CPU is
    # not counted (only the client's).
    return Result(name=name, requests_per_s=rate / group, events_per_s=rate, p50_ms=0.0, p99_ms=0.0, non_2xx=0,
                  stored=log.count(), cpu_us_per_event=cpu / max(written, 1) * 1e6)


def pg_schema_url() -> tuple[str, str]:
    schema = f"bench_{secrets.token_hex(4)}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return schema, f"{PG_URL}?options=-csearch_path%3D{schema}"


def drop_schema(schema: str) -> None:
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2, help="API processes of the 'workers' scenarios")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--only", default="",
                        help="Comma-separated subset: sqlite,full,workers,postgres,pgworkers,track")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    wrk = ensure_wrk()
    # (result, its HTTP ceiling, its storage ceiling)
    rows: list[tuple[Result, Result | None, Result | None]] = []
    only = {x for x in args.only.split(",") if x}

    def want(name: str) -> bool:
        return not only or name in only

    with tempfile.TemporaryDirectory(prefix="traitsync-bench-") as tmp:
        work = Path(tmp)
        http = ceiling(wrk, args, 100)
        rows.append((http, http, None))
        if want("sqlite") or want("full") or want("workers"):
            store = storage_ceiling("storage ceiling SQLite (bare append of the same rows)",
                                    f"sqlite:///{work / 'ceiling.db'}", args.duration)
            rows.append((store, None, store))
            if want("sqlite"):
                rows.append((traitsync(wrk, args, "traitsync SQLite, durability normal",
                                       f"sqlite:///{work / 'a.db'}", work, batch=100), http, store))
            if want("full"):
                rows.append((traitsync(wrk, args, "traitsync SQLite, durability full", f"sqlite:///{work / 'b.db'}",
                                       work, batch=100, durability="full"), http, store))
            if want("workers"):
                rows.append((traitsync(wrk, args, f"traitsync SQLite, {args.workers} API processes",
                                       f"sqlite:///{work / 'd.db'}", work, batch=100, workers=args.workers),
                             http, store))
        if (want("postgres") or want("pgworkers")) and not args.skip_postgres:
            schema, url = pg_schema_url()
            try:
                store = storage_ceiling("storage ceiling PostgreSQL (bare append of the same rows)", url,
                                        args.duration)
            finally:
                drop_schema(schema)
            rows.append((store, None, store))
            for scenario, workers in (("postgres", 1), ("pgworkers", args.workers)):
                if not want(scenario):
                    continue
                schema, url = pg_schema_url()
                try:
                    name = "traitsync PostgreSQL" + (f", {workers} API processes" if workers > 1 else "")
                    rows.append((traitsync(wrk, args, name, url, work, batch=100, workers=workers), http, store))
                finally:
                    drop_schema(schema)
        if want("track"):
            single = ceiling(wrk, args, 0)
            rows.append((single, single, None))
            rows.append((traitsync(wrk, args, "traitsync SQLite /v1/track", f"sqlite:///{work / 'c.db'}", work,
                                   batch=0), single, None))
    print(f"\nIngest benchmark: {args.connections} connections, {args.duration}s per scenario, "
          f"{os.cpu_count()} cores\n")
    print("| scenario | requests/s | events/s | vs HTTP ceiling | vs storage ceiling | CPU µs/event | "
          "p50 ms | p99 ms | non-2xx | stored |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r, http_ref, store_ref in rows:
        vs_http = f"{r.events_per_s / http_ref.events_per_s:.2f}" if http_ref else ""
        vs_store = f"{r.events_per_s / store_ref.events_per_s:.2f}" if store_ref else ""
        cpu = "" if r.cpu_us_per_event is None else f"{r.cpu_us_per_event:.1f}"
        print(f"| {r.name} | {r.requests_per_s:,.0f} | {r.events_per_s:,.0f} | {vs_http} | {vs_store} | {cpu} | "
              f"{r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.non_2xx} | {'' if r.stored is None else f'{r.stored:,}'} |")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps([asdict(r) for r, _, _ in rows], indent=2))


if __name__ == "__main__":
    main()
