"""Realtime engine throughput and exit lateness on SQLite.

Throughput: N events (default 2M) over P profiles (default 100k), 20 computed traits + 20
audiences of mixed kinds, through identity and the realtime engine; prints events/s for each
stage, the end-to-end rate and its ratio to the ingest (log append) rate.
Exits: M memberships (default 10,000) of a 60 s window audience, all due within the same minute;
the engine thread runs on the real clock and the p99 lateness (result at_ms - due) is printed.
Memory (``--memory-profiles N``): peak RSS of a fresh process running only the engine over N
profiles x 20 computations (2 events each), state in the store and the default profile cache;
run it for two sizes to see how it grows, and extrapolate to 1M profiles.

Results print as markdown tables. The baseline is the ingest (log append) rate of the same run,
because the machine may be shared: ratios are comparable between runs, absolute rates less so.
CPU rates (process time) are printed too for the same reason.

    .venv/bin/python bench/engine.py                       # the target sizes (slow)
    .venv/bin/python bench/engine.py --events 100000 --profiles 10000 --exits 2000
    .venv/bin/python bench/engine.py --skip-throughput --exits 0 --memory-profiles 20000 100000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from traitsync.compute.realtime import RealtimeEngine
from traitsync.config.yaml_lines import load_yaml_text
from traitsync.definitions import load_definitions
from traitsync.identity import IdentityWorker, default_identity_config
from traitsync.log.event_log import EventLog
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store.database import Database

EVENTS = ["Order Completed", "Product Viewed", "Product Added", "Page Viewed", "Signed Up"]


def definitions_yaml() -> str:
    traits = [
        "event('Order Completed').count()", "event('Order Completed').within(7 days).count()",
        "event('Order Completed').sum(property('total'))",
        "event('Order Completed').within(30 days).avg(property('total'))",
        "event('Order Completed').max(property('total'))", "event('Order Completed').min(property('total'))",
        "event('Product Viewed').mode(property('sku'), 2)", "event('Product Viewed').first(property('sku'))",
        "event('Product Viewed').last(property('sku'))", "event('Product Viewed').unique(property('sku'))",
        "event('Product Viewed').unique(property('sku')).count()", "event('Product Viewed').within(1 days).count()",
        "event('Product Added').count()", "event('Product Added').within(3 days).unique(property('sku')).count()",
        "event('Page Viewed').count()", "event('Page Viewed').within(1 days).count()",
        "event('Page Viewed').last(property('url'))", "event('Signed Up').first(property('plan'))",
        "event('Order Completed').where(property('total') > 50).count()",
        "event('Order Completed').within(90 days).sum(property('total'))",
    ]
    auds = [
        "event('Order Completed').within(30 days).count() >= 1", "event('Order Completed').count() >= 3",
        "event('Product Viewed').within(7 days).count() >= 5", "event('Product Added').within(1 days).count() >= 1",
        "event('Page Viewed').within(7 days).count() = 0", "event('Order Completed').within(7 days).count() <= 1",
        "event('Product Added').where(event('Order Completed').within(parent: 1 days).count() = 0)"
        ".within(7 days).count() >= 1",
        "event('Product Viewed').between(1 days, 7 days).count() >= 2", "trait('t0') >= 2", "trait('t2') > 500",
        "audience('a0') AND trait('t6') != 'x'", "audience('a1') OR audience('a2')", "NOT audience('a0')",
        "event('Signed Up').count() >= 1 AND event('Order Completed').count() = 0",
        "event('Order Completed').where(property('total') > 90).within(30 days).count() >= 1",
        "trait('plan') = 'pro'", "event('Page Viewed').within(1 days).count() >= 3",
        "audience('a8') AND audience('a3')", "event('Product Viewed').within(30 days).count() >= 10",
        "trait('t11') >= 2",
    ]
    out = ["computed_traits:"] + [f"  - key: t{i}\n    query: \"{q}\"" for i, q in enumerate(traits)]
    out += ["audiences:"] + [f"  - key: a{i}\n    query: \"{q}\"" for i, q in enumerate(auds)]
    return "\n".join(out) + "\n"


def messages(n: int, profiles: int, now: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        p = rnd.randrange(profiles)
        t = now - rnd.randrange(40 * 86_400_000)
        if rnd.random() < 0.03:
            out.append({"type": "identify", "userId": f"u{p}", "messageId": f"e{i}", "timestamp": format_iso_ms(t),
                        "traits": {"plan": rnd.choice(["free", "pro"]), "email": f"u{p}@example.com"}})
            continue
        name = rnd.choice(EVENTS)
        msg: dict[str, Any] = {"type": "track", "userId": f"u{p}", "event": name, "messageId": f"e{i}",
                               "timestamp": format_iso_ms(t),
                               "properties": {"total": rnd.randrange(100), "sku": f"s{rnd.randrange(20)}",
                                              "url": f"/p/{rnd.randrange(50)}", "plan": "pro"}}
        out.append(msg)
    return out


def _rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "-"


def throughput(tmp: Path, events: int, profiles: int, chunk: int) -> None:
    db = Database(f"sqlite:///{tmp / 'throughput.db'}")
    now = int(time.time() * 1000)
    msgs = messages(events, profiles, now)
    log = EventLog(db)
    t0 = time.perf_counter()
    for start in range(0, len(msgs), 5000):
        log.append_messages("src_bench", msgs[start:start + 5000], received_at_ms=now)
    ingest = time.perf_counter() - t0
    identity = IdentityWorker(db, default_identity_config(), chunk_size=5000)
    t0, c0 = time.perf_counter(), time.process_time()
    while identity.run_once() > 0:
        pass
    resolve, resolve_cpu = time.perf_counter() - t0, time.process_time() - c0
    engine = RealtimeEngine(db, load_definitions(load_yaml_text(definitions_yaml())), clock=lambda: now / 1000,
                            chunk_size=chunk, cache_profiles=200_000)
    engine.prepare()
    t0, c0 = time.perf_counter(), time.process_time()
    while engine.run_once() > 0:
        pass
    compute, compute_cpu = time.perf_counter() - t0, time.process_time() - c0
    conn = db.connect()
    results = int(conn.scalar("SELECT COUNT(*) FROM computation_results"))
    conn.close()
    base = events / ingest
    print(f"\n### Throughput: {events:,} events, {profiles:,} profiles, 40 definitions, chunk {chunk:,}, SQLite\n")
    print("| stage | events/s (wall) | events/s (CPU) | ratio to ingest (wall) |")
    print("|---|---:|---:|---:|")
    print(f"| ingest, log append (baseline) | {base:,.0f} | - | 1.00 |")
    for name, wall, cpu in (("identity", resolve, resolve_cpu), ("engine", compute, compute_cpu),
                            ("**identity + engine**", resolve + compute, resolve_cpu + compute_cpu)):
        print(f"| {name} | {_rate(events, wall)} | {_rate(events, cpu)} | {events / wall / base:.2f} |")
    print(f"| target (identity + engine) | 20,000 | | {20_000 / base:.2f} |")
    print(f"\n{results:,} result rows.")


def exits(tmp: Path, members: int) -> None:
    db = Database(f"sqlite:///{tmp / 'exits.db'}")
    defs = load_definitions(load_yaml_text(
        "audiences:\n  - key: active\n    condition: {performed: {event: Ping, at_least: 1, within: 60s}}\n"))
    log = EventLog(db)
    now = int(time.time() * 1000)
    # Timestamps spread over one second so that all exits fall due in the same minute, ~10 s from now.
    base = now - 60_000 + 10_000
    msgs = [{"type": "track", "userId": f"u{i}", "event": "Ping", "messageId": f"p{i}",
             "timestamp": format_iso_ms(base + (i * 1000) // members)} for i in range(members)]
    log.append_messages("src_bench", msgs, received_at_ms=now)
    identity = IdentityWorker(db, default_identity_config(), chunk_size=5000)
    while identity.run_once() > 0:
        pass
    engine = RealtimeEngine(db, defs, chunk_size=5000)
    while engine.run_once() > 0:
        pass
    stop = threading.Event()
    thread = threading.Thread(target=engine.run_forever, args=(stop,))
    thread.start()
    deadline = time.time() + 90
    conn = db.connect()
    while time.time() < deadline:
        done = conn.scalar("SELECT COUNT(*) FROM computation_results WHERE new_value = 'false'")
        if int(done) >= members:
            break
        time.sleep(0.2)
    stop.set()
    engine.wake()
    thread.join()
    rows = conn.fetchall("SELECT r.at_ms, e.timestamp_ms FROM computation_results r JOIN profile_events pe ON "
                         "pe.profile_id = r.profile_id JOIN events e ON e.\"offset\" = pe.\"offset\" "
                         "WHERE r.new_value = 'false'")
    conn.close()
    late = sorted(at - (t + 60_000) for at, t in rows)
    p99 = late[max(0, int(len(late) * 0.99) - 1)]
    print(f"\n### Exits: {members:,} memberships due in the same minute\n")
    print("| exited | p50 lateness | p99 lateness | max | target p99 |")
    print("|---:|---:|---:|---:|---:|")
    print(f"| {len(late):,} of {members:,} | {late[len(late) // 2]} ms | {p99} ms | {late[-1]} ms | <= 1000 ms |")


CACHE_PROFILES = 50_000  # RealtimeEngine's default cache_profiles, used by the memory child
MEMORY_DEFINITIONS = 20  # t0..t9 and a0..a9 of definitions_yaml(): they only read each other


def memory_yaml() -> str:
    keep = {f"t{i}" for i in range(10)} | {f"a{i}" for i in range(10)}
    lines = definitions_yaml().split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("  - key: ") and line[len("  - key: "):] not in keep:
            continue
        if line.startswith("    query:") and lines[i - 1][len("  - key: "):] not in keep:
            continue
        out.append(line)
    return "\n".join(out)


def memory_child(path: str, now: int) -> None:
    """Run only the engine over a prepared store; print its own peak RSS (bytes) as JSON.

    A separate process so that the benchmark's own data (the generated messages) is not counted.
    """
    db = Database(f"sqlite:///{path}")
    defs = load_definitions(load_yaml_text(memory_yaml()))
    engine = RealtimeEngine(db, defs, clock=lambda: now / 1000, chunk_size=2000, cache_profiles=CACHE_PROFILES)
    t0 = time.perf_counter()
    while engine.run_once() > 0:
        pass
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so it would report the parent's peak.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                rss = int(line.split()[1]) * 1024
    print(json.dumps({"rss": rss, "seconds": time.perf_counter() - t0}))


def memory(tmp: Path, sizes: list[int]) -> None:
    rows: list[tuple[int, int, float]] = []
    now = int(time.time() * 1000)
    for n in sizes:
        path = tmp / f"memory{n}.db"
        db = Database(f"sqlite:///{path}")
        msgs = messages(2 * n, n, now, seed=2)
        log = EventLog(db)
        for start in range(0, len(msgs), 5000):
            log.append_messages("src_bench", msgs[start:start + 5000], received_at_ms=now)
        identity = IdentityWorker(db, default_identity_config(), chunk_size=5000)
        while identity.run_once() > 0:
            pass
        identity.close()
        out = subprocess.run([sys.executable, __file__, "--memory-child", str(path), "--now", str(now)],
                             check=True, capture_output=True, text=True).stdout
        got = json.loads(out.strip().splitlines()[-1])
        rows.append((n, int(got["rss"]), float(got["seconds"])))
    print(f"\n### Memory: peak RSS of the engine process, {MEMORY_DEFINITIONS} computations, 2 events per profile\n")
    print("| profiles | peak RSS | engine time |")
    print("|---:|---:|---:|")
    for n, rss, secs in rows:
        print(f"| {n:,} | {rss / 2**20:,.0f} MiB | {secs:,.1f} s |")
    if len(rows) >= 2:
        # Cached profiles are what grows: rss = fixed + per_profile * min(N, cache). Two sizes give both
        # terms; sizes beyond the cache check the plateau rather than feeding the slope.
        (n1, r1, _), (n2, r2, _) = rows[0], rows[-1]
        c1, c2 = min(n1, CACHE_PROFILES), min(n2, CACHE_PROFILES)
        per = (r2 - r1) / (c2 - c1) if c2 != c1 else 0.0
        fixed = r1 - per * c1
        est = fixed + per * min(1_000_000, CACHE_PROFILES)
        print(f"\nModel rss = fixed + per_profile x min(N, cache {CACHE_PROFILES:,}): fixed {fixed / 2**20:,.0f} MiB, "
              f"{per:,.0f} bytes per cached profile; at 1,000,000 profiles (state in the store, cache full): "
              f"~{est / 2**30:.2f} GiB (target < 4 GB). Linear without the cache bound: "
              f"{(r1 + (r2 - r1) / (n2 - n1) * (1_000_000 - n1)) / 2**30:.2f} GiB.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--exits", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--memory-profiles", type=int, nargs="*", default=[],
                        help="peak RSS for each profile count (e.g. 20000 100000)")
    parser.add_argument("--memory-child", help=argparse.SUPPRESS)
    parser.add_argument("--now", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_child, args.now)
        return
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_throughput:
            throughput(Path(tmp), args.events, args.profiles, args.chunk)
        if args.exits:
            exits(Path(tmp), args.exits)
        if args.memory_profiles:
            memory(Path(tmp), sorted(args.memory_profiles))


if __name__ == "__main__":
    main()
