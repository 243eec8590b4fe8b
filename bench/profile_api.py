"""Profile API benchmark: ``GET .../profiles/user_id:{id}/traits`` over a 1M-profile SQLite store.

Target (issue 4): p99 < 10 ms at >= 2,000 requests/s, load from a separate process.

The store is built by inserting straight into ``profiles``, ``profile_external_ids`` and
``profile_traits`` (the identity worker is far too slow to build 1M profiles for a read
benchmark). Each profile has a ``user_id`` (``u<n>``) and an ``anonymous_id`` and ``--traits``
custom traits. ``--db PATH`` keeps the store between runs (it is rebuilt only when its profile
count differs).

``traitsync serve --role api`` runs as a subprocess. For every ``--workers`` setting the same
server answers, back to back:

* ``wrk`` closed loop at ``--connections`` (max throughput) and ``--latency-connections``
  (latency at a moderate load), random ids from a Lua script;
* an open-loop generator (this file, ``--loadgen``, in its own process: wrk2 is not packaged)
  firing requests on a fixed schedule at ``--rate``; latency counts from the *scheduled* time,
  so a stalled server cannot hide its queue (no coordinated omission);

each for two baselines and for ``/traits``: ``/healthz`` (no store work; a sync route, so it also
pays a thread-pool hop) and a Profile API route with an unknown space (the whole stack, the
route class and auth, a 404 before any store work). Ratios are against the baselines measured
in the same run; the last column is the server's CPU per request (all its processes), the figure
that other load on a shared machine disturbs least.

    .venv/bin/python bench/profile_api.py [--profiles 1000000] [--db /tmp/profiles-1m.db] [--workers 1,2]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
SPACE = "spa_bench"
SECRET = "bench-profile-secret"
AUTH = "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()
TRAITS_PATH = "/v1/spaces/" + SPACE + "/collections/users/profiles/user_id:u{}/traits"
HEALTHZ = "/healthz (baseline)"
NO_STORE = "Profile API, unknown space: 404, no store work (baseline)"
#: (row name, fixed path or None for random /traits lookups). The second baseline goes through
#: the whole stack and the Profile API route class and auth, and stops before the store: what
#: is left of /traits above it is the store lookup and the answer.
ROUTES = ((HEALTHZ, "/healthz"), (NO_STORE, "/v1/spaces/nope/collections/users/profiles/user_id:u1/traits"),
          ("/traits", None))

LUA = r"""
-- Random user ids over [0, N) for the Profile API /traits route, or a fixed PATH.
local n = tonumber(os.getenv("N") or "1000")
local fixed = os.getenv("FIXED_PATH")
local auth = os.getenv("AUTH") or ""
local headers = {["Authorization"] = auth}

function init(args)
  math.randomseed(os.time() + tonumber(tostring({}):sub(8), 16) % 100000)
end

request = function()
  if fixed and fixed ~= "" then
    return wrk.format("GET", fixed, headers)
  end
  return wrk.format("GET", "/v1/spaces/spa_bench/collections/users/profiles/user_id:u" ..
    math.random(0, n - 1) .. "/traits", headers)
end

function done(summary, latency, requests)
  io.write(string.format("STATUS non2xx=%d errors_connect=%d errors_read=%d errors_timeout=%d\n",
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.timeout))
  io.write(string.format("LAT p50=%.3f p95=%.3f p99=%.3f max=%.3f\n", latency:percentile(50) / 1000,
    latency:percentile(95) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""

TRAIT_VALUES = [
    ("email", lambda i: f"user{i}@example.com"),
    ("first_name", lambda i: f"First{i % 5000}"),
    ("last_name", lambda i: f"Last{i % 7919}"),
    ("plan", lambda i: ("free", "pro", "business", "enterprise")[i % 4]),
    ("age", lambda i: 18 + i % 60),
    ("city", lambda i: ("Berlin", "Lisbon", "Austin", "Osaka", "Lagos")[i % 5]),
    ("lifetime_value", lambda i: round((i % 10000) * 1.37, 2)),
    ("is_subscriber", lambda i: i % 3 == 0),
    ("company", lambda i: {"name": f"Acme {i % 1000}", "employees": i % 500}),
    ("created_at", lambda i: f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00.000Z"),
]


@dataclass
class Result:
    workers: int
    route: str
    load: str
    requests_per_s: float
    p50_ms: float
    p95_ms: float | None
    p99_ms: float
    max_ms: float
    errors: int
    #: Server CPU (all its processes, user + system) per request: the figure other load on the
    #: machine disturbs least.
    cpu_us_per_request: float


# --- the store ------------------------------------------------------------------------------


def profile_count(path: Path) -> int:
    if not path.exists():
        return -1
    try:
        with sqlite3.connect(path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM profiles").fetchone()[0])
    except sqlite3.Error:
        return -1


def build_store(path: Path, n: int, traits: int) -> None:
    """Migrate, then bulk-insert ``n`` profiles in big transactions with executemany.

    Trait values are JSON text written by ``orjson.dumps``, as the identity worker writes them.
    """
    from traitsync.store import Database
    from traitsync.store.migrate import migrate

    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = Database(f"sqlite:///{path}")
    migrate(db)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("PRAGMA cache_size=-262144")
    started = time.monotonic()
    chunk = 50_000
    base_ms = 1_760_000_000_000
    specs = TRAIT_VALUES[:traits] + [(f"extra_{k}", lambda i, k=k: f"v{k}-{i % 97}")
                                     for k in range(max(0, traits - len(TRAIT_VALUES)))]
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        profiles, ids, rows = [], [], []
        for i in range(lo, hi):
            pid = f"use_{i:010d}"
            at = base_ms + i
            profiles.append((pid, "users", 2 * i, None, 0, at, at + 1000, f"m{i}a", "src_web", f"m{i}b", "src_web"))
            ids.append(("user_id", f"u{i}", "users", pid, "src_web", at, f"m{i}a", 2 * i))
            ids.append(("anonymous_id", f"a{i:08x}-anon", "users", pid, "src_web", at, f"m{i}a", 2 * i))
            for key, make in specs:
                rows.append((pid, key, orjson.dumps(make(i)).decode(), "src_web", at + 1000, 2 * i + 1))
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO profiles (profile_id, collection, created_offset, merged_into, merge_count, "
                         "created_at_ms, updated_at_ms, first_message_id, first_source_id, last_message_id, "
                         "last_source_id) VALUES (?,?,?,?,?,?,?,?,?,?,?)", profiles)
        conn.executemany("INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id, "
                         "created_at_ms, first_message_id, event_offset) VALUES (?,?,?,?,?,?,?,?)", ids)
        conn.executemany("INSERT INTO profile_traits (profile_id, key, value, source_id, updated_at_ms, "
                         "event_offset) VALUES (?,?,?,?,?,?)", rows)
        conn.execute("COMMIT")
    conn.execute("PRAGMA analysis_limit=1000")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    print(f"built {n:,} profiles x {traits} traits in {time.monotonic() - started:.0f}s "
          f"({path.stat().st_size / 1e9:.2f} GB)", file=sys.stderr)


def warm_page_cache(path: Path) -> None:
    """Read the file once so the first scenario does not pay for cold disk reads."""
    with path.open("rb") as f:
        while f.read(1 << 24):
            pass


# --- the server -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(db_path: Path, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    config = workdir / "traitsync.yaml"
    config.write_text(f"space_id: {SPACE}\nsources:\n  - id: src_web\n    write_key: bench-key\n"
                      f"profile_api:\n  access_secret: {SECRET}\n")
    port = free_port()
    proc = subprocess.Popen([PY, "-m", "traitsync.cli", "serve", "-c", str(config), "--database-url",
                             f"sqlite:///{db_path}", "--port", str(port), "--workers", str(workers), "--role", "api",
                             "--log-level", "warning"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    else:
        raise RuntimeError("server did not start")
    # Every worker process must be up (and serving) before measuring.
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": AUTH}) as client:
        for i in range(200):
            r = client.get(TRAITS_PATH.format(i))
            assert r.status_code == 200, (r.status_code, r.text)
    return proc, port


def server_cpu_seconds(pid: int) -> float:
    """User + system CPU of ``pid`` and its descendants (the uvicorn workers)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    family, frontier = {pid}, [pid]
    while frontier:
        parent = frontier.pop()
        for child, ppid in parents.items():
            if ppid == parent and child not in family:
                family.add(child)
                frontier.append(child)
    return sum(times.get(p, 0.0) for p in family)


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# --- load: wrk (closed loop) ------------------------------------------------------------------


def run_wrk(wrk: str, lua: Path, port: int, *, n: int, path: str | None, duration: int,
            connections: int) -> tuple[float, float, float, float, float, int, int]:
    env = {**os.environ, "N": str(n), "AUTH": AUTH, "FIXED_PATH": path or ""}
    out = subprocess.run([wrk, "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(lua),
                          f"http://127.0.0.1:{port}"], capture_output=True, text=True, env=env, check=True).stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    status = re.search(r"STATUS non2xx=(\d+) errors_connect=(\d+) errors_read=(\d+) errors_timeout=(\d+)", out)
    lat = re.search(r"LAT p50=([\d.]+) p95=([\d.]+) p99=([\d.]+) max=([\d.]+)", out)
    count = re.search(r"(\d+) requests in", out)
    assert rps and status and lat and count, out
    errors = sum(int(x) for x in status.groups())
    return (float(rps.group(1)), float(lat.group(1)), float(lat.group(2)), float(lat.group(3)),
            float(lat.group(4)), errors, int(count.group(1)))


# --- load: open loop (this file with --loadgen, in its own process) -----------------------------


async def open_loop(port: int, *, rate: float, duration: float, n: int, path: str | None,
                    connections: int, warmup: float = 1.0) -> dict[str, float]:
    """Send on a fixed schedule over ``connections`` keep-alive connections opened up front (as wrk2).

    Each latency runs from the request's *scheduled* time, so waiting for a free connection (the
    server fell behind) counts. The first ``warmup`` seconds are sent but not counted. Times come
    from ``perf_counter``: uvloop's ``loop.time()`` only has millisecond resolution.
    """
    clock = time.perf_counter
    rng = random.Random(7)
    idle: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    lat_sched: list[float] = []
    lat_sent: list[float] = []
    errors = 0

    async def one(scheduled: float, target: str, counted: bool) -> None:
        nonlocal errors
        reader, writer = await idle.get()
        sent = clock()
        try:
            writer.write(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {AUTH}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = int(re.search(rb"(?i)content-length:\s*(\d+)", head).group(1))  # type: ignore[union-attr]
            await reader.readexactly(length)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, AttributeError, ValueError):
            errors += 1
            writer.close()
            idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
            return
        done = clock()
        idle.put_nowait((reader, writer))
        if status != 200:
            errors += 1
        if counted:
            lat_sched.append(done - scheduled)
            lat_sent.append(done - sent)

    skip = int(rate * warmup)
    total = skip + int(rate * duration)
    tasks: set[asyncio.Task[None]] = set()
    start = clock() + 0.05
    i = 0
    while i < total:
        now = clock()
        while i < total and start + i / rate <= now:
            target = path or TRAITS_PATH.format(rng.randrange(n))
            task = asyncio.create_task(one(start + i / rate, target, i >= skip))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            i += 1
        if i < total:
            await asyncio.sleep(max(0.0, start + i / rate - clock()))
    if tasks:
        await asyncio.wait(set(tasks), timeout=30)
    elapsed = clock() - start - warmup

    def pct(values: list[float], p: float) -> float:
        if not values:
            return float("nan")
        s = sorted(values)
        return s[min(len(s) - 1, int(len(s) * p))] * 1000

    return {"sent": total - skip, "completed": len(lat_sched), "elapsed": elapsed, "all_sent": total,
            "rate": len(lat_sched) / elapsed, "errors": errors, "connections": connections,
            "p50": pct(lat_sched, 0.50), "p95": pct(lat_sched, 0.95), "p99": pct(lat_sched, 0.99),
            "max": pct(lat_sched, 1.0), "sent_p50": pct(lat_sent, 0.50), "sent_p99": pct(lat_sent, 0.99)}


def run_open_loop(port: int, *, rate: float, duration: int, n: int, path: str | None,
                  connections: int) -> dict[str, float]:
    cmd = [PY, __file__, "--loadgen", "--port", str(port), "--rate", str(rate), "--duration", str(duration),
           "--profiles", str(n), "--open-connections", str(connections)] + (["--path", path] if path else [])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


def loadgen_main(args: argparse.Namespace) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    result = asyncio.run(open_loop(args.port, rate=args.rate, duration=args.duration, n=args.profiles,
                                   path=args.path, connections=args.open_connections))
    print(json.dumps(result))


# --- the run --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profiles", type=int, default=1_000_000)
    parser.add_argument("--traits", type=int, default=10, help="custom traits per profile")
    parser.add_argument("--db", type=Path, help="keep the store here and reuse it between runs")
    parser.add_argument("--workers", default="1,2", help="comma list of API process counts to measure")
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--connections", type=int, default=64, help="wrk connections for max throughput")
    parser.add_argument("--latency-connections", type=int, default=8, help="wrk connections for latency")
    parser.add_argument("--rate", type=float, default=2000, help="open-loop requests/s")
    parser.add_argument("--open-connections", type=int, default=32, help="open-loop connections")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--loadgen", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loadgen:
        loadgen_main(args)
        return
    sys.path.insert(0, str(ROOT / "src"))
    wrk = shutil.which("wrk")
    assert wrk, "wrk is required (apt-get install wrk)"
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="traitsync-profile-bench-") as tmp:
        work = Path(tmp)
        db_path = args.db or work / "profiles.db"
        if profile_count(db_path) != args.profiles:
            build_store(db_path, args.profiles, args.traits)
        warm_page_cache(db_path)
        lua = work / "profile_api.lua"
        lua.write_text(LUA)
        for workers in [int(w) for w in args.workers.split(",") if w]:
            proc, port = start_server(db_path, work, workers)
            try:
                # Warm the server and SQLite's caches on both routes.
                run_wrk(wrk, lua, port, n=args.profiles, path=None, duration=3, connections=args.connections)
                for route, path in ROUTES:
                    for conns in (args.connections, args.latency_connections):
                        cpu = server_cpu_seconds(proc.pid)
                        rps, p50, p95, p99, mx, err, count = run_wrk(wrk, lua, port, n=args.profiles, path=path,
                                                                     duration=args.duration, connections=conns)
                        cpu = (server_cpu_seconds(proc.pid) - cpu) / max(count, 1) * 1e6
                        results.append(Result(workers, route, f"wrk closed loop, {conns} conns", rps, p50, p95,
                                              p99, mx, err, cpu))
                    cpu = server_cpu_seconds(proc.pid)
                    ol = run_open_loop(port, rate=args.rate, duration=args.duration, n=args.profiles, path=path,
                                       connections=args.open_connections)
                    cpu = (server_cpu_seconds(proc.pid) - cpu) / max(ol["all_sent"], 1) * 1e6
                    results.append(Result(workers, route, f"open loop {args.rate:,.0f}/s ({int(ol['connections'])}"
                                          " conns)", ol["rate"], ol["p50"], ol["p95"], ol["p99"], ol["max"],
                                          int(ol["errors"]) + int(ol["sent"] - ol["completed"]), cpu))
            finally:
                stop_server(proc)
    print(f"\nProfile API benchmark: {args.profiles:,} profiles x {args.traits} traits, SQLite, "
          f"{args.duration}s per row, {os.cpu_count()} cores (load generator on the same machine), "
          f"load average {os.getloadavg()[0]:.1f}\n")
    print("| API processes | route | load | requests/s | ratio to /healthz | ratio to no-store route | p50 ms | "
          "p95 ms | p99 ms | max ms | non-200 | server CPU us/request |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        base = next(b for b in results if b.workers == r.workers and b.load == r.load and b.route == HEALTHZ)
        floor = next(b for b in results if b.workers == r.workers and b.load == r.load and b.route == NO_STORE)
        p95 = "" if r.p95_ms is None else f"{r.p95_ms:.2f}"
        print(f"| {r.workers} | {r.route} | {r.load} | {r.requests_per_s:,.0f} | "
              f"{r.requests_per_s / base.requests_per_s:.2f} | {r.requests_per_s / floor.requests_per_s:.2f} | "
              f"{r.p50_ms:.2f} | {p95} | {r.p99_ms:.2f} | "
              f"{r.max_ms:.1f} | {r.errors} | {r.cpu_us_per_request:,.0f} |")
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))


if __name__ == "__main__":
    main()
