"""Realtime engine throughput and exit lateness on SQLite.

Throughput: N events (default 2M) over P profiles (default 100k), 20 computed traits + 20
audiences of mixed kinds, through identity and the realtime engine; prints events/s for each
stage, the end-to-end rate and its ratio to the ingest (log append) rate.
Exits: M memberships (default 10,000) of a 60 s window audience, all due within the same minute;
the engine thread runs on the real clock and the p99 lateness (result at_ms - due) is printed.

    .venv/bin/python bench/engine.py                       # the issue's sizes (slow)
    .venv/bin/python bench/engine.py --events 50000 --profiles 5000 --exits 2000
"""

from __future__ import annotations

import argparse
import random
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
    t0 = time.perf_counter()
    while identity.run_once() > 0:
        pass
    resolve = time.perf_counter() - t0
    engine = RealtimeEngine(db, load_definitions(load_yaml_text(definitions_yaml())), clock=lambda: now / 1000,
                            chunk_size=chunk, cache_profiles=200_000)
    t0 = time.perf_counter()
    while engine.run_once() > 0:
        pass
    compute = time.perf_counter() - t0
    conn = db.connect()
    results = int(conn.scalar("SELECT COUNT(*) FROM computation_results"))
    conn.close()
    print(f"events={events:,} profiles={profiles:,} definitions=40")
    print(f"ingest   {events / ingest:10,.0f} ev/s")
    print(f"identity {events / resolve:10,.0f} ev/s")
    print(f"engine   {events / compute:10,.0f} ev/s  ({results:,} result rows)")
    e2e = events / (resolve + compute)
    print(f"identity+engine {e2e:10,.0f} ev/s  ratio to ingest {e2e / (events / ingest):.2f}")


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
    print(f"exits    {len(late):,} of {members:,} exited; lateness p50={late[len(late) // 2]} ms "
          f"p99={p99} ms max={late[-1]} ms")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--profiles", type=int, default=100_000)
    parser.add_argument("--exits", type=int, default=10_000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not args.skip_throughput:
            throughput(Path(tmp), args.events, args.profiles, args.chunk)
        if args.exits:
            exits(Path(tmp), args.exits)


if __name__ == "__main__":
    main()
