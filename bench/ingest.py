"""Ingest benchmark: traitsync's durable Tracking API against a raw parsing ceiling, in one run.

Load comes from ``wrk`` in a separate process (32 connections, batches of 100 ~600-byte track
events with unique messageIds, see ``bench/ingest.lua``). Each scenario starts its own server
subprocess on a fresh store. Ratios are against the ceiling measured in the same run, so the
figures mean the same on any machine.

    .venv/bin/python bench/ingest.py [--duration 15] [--connections 32] [--skip-postgres]
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


def wait_up(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
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
        result = run_wrk(wrk, port, duration=args.duration, connections=args.connections, batch=batch,
                         run_id=secrets.token_hex(3))
    finally:
        stop(proc)
    from traitsync.log import EventLog
    from traitsync.store import Database

    result.stored = EventLog(Database(db_url)).count()
    result.name = name
    return result


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
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--only", default="", help="Comma-separated subset: ceiling,sqlite,full,workers,postgres,track")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    wrk = ensure_wrk()
    results: list[Result] = []
    only = {x for x in args.only.split(",") if x}

    def want(name: str) -> bool:
        return not only or name in only

    base = single_base = None
    with tempfile.TemporaryDirectory(prefix="traitsync-bench-") as tmp:
        work = Path(tmp)
        base = ceiling(wrk, args, 100)
        results.append(base)
        if want("sqlite"):
            results.append(traitsync(wrk, args, "traitsync SQLite, durability normal", f"sqlite:///{work / 'a.db'}",
                                     work, batch=100))
        if want("full"):
            results.append(traitsync(wrk, args, "traitsync SQLite, durability full", f"sqlite:///{work / 'b.db'}",
                                     work, batch=100, durability="full"))
        if want("workers"):
            results.append(traitsync(wrk, args, "traitsync SQLite, 2 API processes", f"sqlite:///{work / 'd.db'}",
                                     work, batch=100, workers=2))
        if want("postgres") and not args.skip_postgres:
            schema, url = pg_schema_url()
            try:
                results.append(traitsync(wrk, args, "traitsync PostgreSQL", url, work, batch=100))
            finally:
                drop_schema(schema)
        if want("track"):
            single_base = ceiling(wrk, args, 0)
            results.append(single_base)
            results.append(traitsync(wrk, args, "traitsync SQLite /v1/track", f"sqlite:///{work / 'c.db'}", work,
                                     batch=0))
    print(f"\nIngest benchmark: {args.connections} connections, {args.duration}s per scenario, "
          f"{os.cpu_count()} cores\n")
    print("| scenario | requests/s | events/s | ratio to ceiling | p50 ms | p99 ms | non-2xx | stored |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        ref = single_base if "track" in r.name and single_base is not None else base
        print(f"| {r.name} | {r.requests_per_s:,.0f} | {r.events_per_s:,.0f} | "
              f"{r.events_per_s / ref.events_per_s:.2f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.non_2xx} | "
              f"{'' if r.stored is None else f'{r.stored:,}'} |")
    out = ROOT / "bench" / "results"
    out.mkdir(exist_ok=True)
    (out / "ingest.json").write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
