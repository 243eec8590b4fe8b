"""End-to-end and delivery benchmarks for activation and delivery.

``e2e``: ``traitsync serve`` (subprocess, real socket) gets RATE events/s into ``/v1/batch`` for
SECONDS with 20 definitions (10 computed traits, 10 audiences) connected to one webhook
destination that posts to a local receiver. Each new user views a product (and sometimes
orders) and then goes quiet, so it enters ``seen_last_5s`` and exits it five seconds later.
Reported: event-to-destination latency (send of a user's first event -> its "Audience Entered"
at the receiver), and exit lateness (receiver time of "Audience Exited" minus last event time +
5 s).

``capacity``: EVENTS of the same traffic already in the log; ``serve --role worker`` runs until
every resulting message is at the receiver. Reported: the worker process's CPU seconds per
event (the figure other load disturbs least) and events/s, against the log append of the same
events in the same run.

``delivery``: the outbox holds N messages; one DestinationWorker with a cap of CAP req/s (the
store-backed limiter every process shares) sends them to a receiver that answers each request
after LATENCY seconds and fails FAIL_SHARE of them with 429 or 500. Reported: achieved rate (as
a share of the cap), the largest number of requests in any sliding 1-second window, and
requests in flight at the receiver; the baseline, measured in the same run, is the same
receiver served one request at a time (what delivery did before it ran requests concurrently).

    .venv/bin/python bench/e2e.py e2e --rate 1000 --seconds 60 [--database-url postgresql://...]
    .venv/bin/python bench/e2e.py capacity --events 20000 [--database-url postgresql://...]
    .venv/bin/python bench/e2e.py delivery --cap 100 --messages 3000 --latency 0.2 --fail-share 0
    .venv/bin/python bench/e2e.py delivery --cap 100 --messages 3000 --fail-share 0.1
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

TRAITS = """\
  - {key: views, kind: event_counter, event: Product Viewed}
  - {key: orders, kind: event_counter, event: Order Completed}
  - {key: revenue, kind: aggregation, event: Order Completed, property: revenue, function: sum}
  - {key: max_order, kind: aggregation, event: Order Completed, property: revenue, function: max}
  - {key: last_category, kind: last, event: Product Viewed, property: category}
  - {key: first_category, kind: first, event: Product Viewed, property: category}
  - {key: categories, kind: unique_list, event: Product Viewed, property: category}
  - {key: category_count, kind: unique_list_count, event: Product Viewed, property: category}
  - {key: views_1h, kind: event_counter, event: Product Viewed, window: 1h}
  - {key: revenue_30d, kind: aggregation, event: Order Completed, property: revenue, function: sum, window: 30d}
"""
AUDIENCES = "".join(
    f"  - key: {key}\n    condition: {cond}\n" for key, cond in [
        ("seen_last_5s", "{performed: {event: Product Viewed, within: 5s}}"),
        ("buyer", "{performed: {event: Order Completed}}"),
        ("buyer_1d", "{performed: {event: Order Completed, within: 1d}}"),
        ("viewer_2", "{performed: {event: Product Viewed, at_least: 2}}"),
        ("viewer_3", "{performed: {event: Product Viewed, at_least: 3}}"),
        ("shoes_fan", "{performed: {event: Product Viewed, where: [{property: category, op: equals, value: Shoes}]}}"),
        ("hats_fan", "{performed: {event: Product Viewed, where: [{property: category, op: equals, value: Hats}]}}"),
        ("big_order", "{performed: {event: Order Completed, where: [{property: revenue, op: greater_than, "
                      "value: 100}]}}"),
        ("window_shopper", "{all: [{performed: {event: Product Viewed}}, "
                           "{not: {performed: {event: Order Completed}}}]}"),
        ("seen_last_1m", "{performed: {event: Product Viewed, within: 1m}}"),
    ])
CATEGORIES = ["Shoes", "Hats", "Bags", "Socks"]


class Recorder:
    """Receiver: records (arrival time, messages); optionally fails a share of requests."""

    def __init__(self, fail_share: float = 0.0, seed: int = 3, latency: float = 0.0) -> None:
        self.got: list[tuple[float, Any]] = []
        self.arrivals: list[float] = []
        self.in_flight = 0
        self.in_flight_samples: list[int] = []
        self.lock = threading.Lock()
        rng = random.Random(seed)
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                return None

            def setup(self) -> None:
                super().setup()  # headers and body go out in two writes: without this, Nagle adds 40 ms
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

            def do_POST(self) -> None:
                now = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with rec.lock:
                    rec.arrivals.append(now)
                    rec.in_flight += 1
                    rec.in_flight_samples.append(rec.in_flight)
                    fail = rng.random() < fail_share
                    status = rng.choice((429, 500)) if fail else 200
                    if not fail:
                        rec.got.append((now, json.loads(body)))
                if latency:
                    time.sleep(latency)
                with rec.lock:
                    rec.in_flight -= 1
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def messages(self) -> list[tuple[float, dict[str, Any]]]:
        with self.lock:
            items = list(self.got)
        out: list[tuple[float, dict[str, Any]]] = []
        for at, body in items:
            out.extend((at, m) for m in (body if isinstance(body, list) else [body]))
        return out


def pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))]


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at * 1000) % 1000:03d}Z"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def bench_config(receiver_url: str) -> str:
    """20 definitions, every one connected to one webhook (batches of 200, 1,000 requests/s)."""
    keys = [line.split("key: ")[1].split(",")[0] for line in TRAITS.splitlines()] + \
        [line.split("key: ")[1] for line in AUDIENCES.splitlines() if "key:" in line]
    conns = "".join(f"      - computation: {k}\n        send: [{'track' if k.startswith('seen') else 'identify'}]\n"
                    for k in keys)
    return (f"space_id: spa_bench\nsources:\n  - id: src\n    write_key: wk\nmanagement_api:\n  token: t\n"
            f"computed_traits:\n{TRAITS}audiences:\n{AUDIENCES}destinations:\n  - id: dst\n    kind: webhook\n"
            f"    rate_limit: 1000\n    settings: {{url: \"{receiver_url}/hook\", batch_size: 200}}\n"
            f"    connections:\n{conns}")


class Shoppers:
    """The e2e traffic: each new user views products (sometimes orders) a few times, then goes quiet."""

    def __init__(self, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.user = 0
        self.sent = 0
        self.active: list[tuple[str, int]] = []
        self.first_sent: dict[str, float] = {}
        self.last_ts: dict[str, float] = {}

    def batch(self, size: int, now: float) -> list[dict[str, Any]]:
        rng = self.rng
        batch: list[dict[str, Any]] = []
        while len(batch) < size:
            if not self.active or rng.random() < 0.5:
                self.active.append((f"u{self.user:06d}", rng.randint(1, 3)))
                self.user += 1
            i = rng.randrange(len(self.active))
            uid, left = self.active[i]
            event = "Order Completed" if rng.random() < 0.2 else "Product Viewed"
            props = {"revenue": round(rng.uniform(5, 200), 2)} if event == "Order Completed" else \
                {"category": rng.choice(CATEGORIES)}
            batch.append({"type": "track", "userId": uid, "event": event, "properties": props,
                          "timestamp": iso(now), "messageId": f"{uid}-{left}-{self.sent + len(batch)}"})
            self.first_sent.setdefault(uid, now)
            if event == "Product Viewed":
                self.last_ts[uid] = int(now * 1000) / 1000
            if left <= 1:
                self.active.pop(i)
            else:
                self.active[i] = (uid, left - 1)
        self.sent += len(batch)
        return batch


def e2e(rate: int, seconds: int, database_url: str | None, partitions: int | None = None) -> None:
    rec = Recorder()
    tmp = Path(tempfile.mkdtemp(prefix="traitsync-e2e-"))
    engine = "" if partitions is None else f"engine: {{partitions: {partitions}}}\n"
    (tmp / "traitsync.yaml").write_text(bench_config(rec.url) + engine)
    url = database_url or f"sqlite:///{tmp / 'traitsync.db'}"
    port = free_port()
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "traitsync.cli", "serve", "-c", str(tmp / "traitsync.yaml"),
                             "--database-url", url, "--port", str(port), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT, env={**os.environ})
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    shoppers = Shoppers()
    first_sent, last_ts = shoppers.first_sent, shoppers.last_ts
    client = httpx.Client(base_url=base, auth=("wk", ""), timeout=30)
    tick = 0.1
    per_tick = max(1, int(rate * tick))
    start = time.time()
    sent = 0
    while time.time() - start < seconds:
        batch = shoppers.batch(per_tick, time.time())
        client.post("/v1/batch", json={"batch": batch}).raise_for_status()
        sent += len(batch)
        time.sleep(max(0.0, start + sent / rate - time.time()))
    user = shoppers.user
    send_s = time.time() - start
    time.sleep(15)  # let the last exits (5 s window) come through
    proc.terminate()
    proc.wait(30)
    entered: dict[str, float] = {}
    exited: dict[str, float] = {}
    for at, m in rec.messages():
        if m.get("type") == "track" and m.get("properties", {}).get("audience_key") == "seen_last_5s":
            uid = m["userId"]
            if m["event"] == "Audience Entered":
                entered.setdefault(uid, at)
            else:
                exited[uid] = at
    lat = [entered[u] - first_sent[u] for u in entered if u in first_sent]
    late = [exited[u] - (last_ts[u] + 5.0) for u in exited if u in last_ts]
    print(json.dumps({
        "benchmark": "e2e", "store": url.split(":")[0], "events_sent": sent, "send_seconds": round(send_s, 1),
        "events_per_second": round(sent / send_s), "users": user, "messages_received": len(rec.messages()),
        "entered_users": len(entered), "exited_users": len(exited),
        "latency_s": {"p50": round(pct(lat, 50), 3), "p99": round(pct(lat, 99), 3), "max": round(max(lat or [0]), 3)},
        "exit_lateness_s": {"p50": round(pct(late, 50), 3), "p99": round(pct(late, 99), 3),
                            "max": round(max(late or [0]), 3)},
    }, indent=2))


def _deliver_once(cap: int, messages: int, adaptive: bool, latency: float, fail_share: float, batch_size: int,
                  concurrency: int | None, limiter_kind: str = "shared") -> dict[str, Any]:
    from traitsync.delivery.limiter import Limiter, RateLimiter
    from traitsync.delivery.outbox import Outbox
    from traitsync.delivery.shared_limiter import SharedRateLimiter
    from traitsync.delivery.target import DeliveryTarget
    from traitsync.delivery.worker import DestinationWorker
    from traitsync.destinations import webhook
    from traitsync.store import Database, migrate

    rec = Recorder(fail_share=fail_share, latency=latency)
    tmp = Path(tempfile.mkdtemp(prefix="traitsync-delivery-"))
    db = Database(f"sqlite:///{tmp / 'db.sqlite'}")
    migrate(db)
    outbox = Outbox(db)
    conn = db.connect()
    with conn.transaction():
        for n in range(messages):
            outbox.enqueue(conn, "dst", f"p{n}", {"type": "identify", "userId": f"u{n}", "messageId": f"m{n}",
                                                  "traits": {"x": n}})
    conn.close()
    settings = webhook.DESTINATION.parse_settings({"url": f"{rec.url}/hook"})
    target = DeliveryTarget.simple("dst", webhook.DESTINATION, settings, rate=cap, batch_size=batch_size,
                                   concurrency=concurrency)
    limiter: Limiter = (SharedRateLimiter(db, "dst", cap, adaptive=adaptive) if limiter_kind == "shared"
                        else RateLimiter(cap, adaptive=adaptive))
    worker = DestinationWorker(db, target, limiter=limiter)
    start = time.time()
    worker.drain(timeout=messages / cap * 3 + 60, include_retries=True)
    elapsed = time.time() - start
    arrivals = sorted(rec.arrivals)
    worst = 0
    j = 0
    for i, t in enumerate(arrivals):
        while arrivals[j] <= t - 1.0:
            j += 1
        worst = max(worst, i - j + 1)
    span = arrivals[-1] - arrivals[0] if len(arrivals) > 1 else elapsed
    # Steady state: while fresh messages remain (the first 80% of requests); the tail is retries
    # waiting out their backoff, when there is nothing to send at the cap.
    k = int(len(arrivals) * 0.8)
    steady = k / (arrivals[k] - arrivals[0]) if k > 1 else float("nan")
    samples = rec.in_flight_samples
    return {
        "cap_per_second": cap, "limiter": limiter_kind, "adaptive_limiter": adaptive, "messages": messages,
        "answer_latency_s": latency,
        "fail_share": fail_share, "batch_size": batch_size, "concurrency": target.concurrency,
        "requests": len(arrivals), "delivered": len(rec.messages()), "seconds": round(elapsed, 1),
        "achieved_requests_per_second": round(len(arrivals) / span, 1),
        "share_of_cap": round(len(arrivals) / span / cap, 3),
        "steady_requests_per_second": round(steady, 1), "steady_share_of_cap": round(steady / cap, 3),
        "max_requests_in_any_1s_window": worst,
        "in_flight": {"mean": round(sum(samples) / max(1, len(samples)), 1), "max": max(samples or [0])},
    }


def delivery(cap: int, messages: int, adaptive: bool, latency: float, fail_share: float, batch_size: int,
             limiter: str) -> None:
    baseline = _deliver_once(cap, max(20, min(messages // 20, 100)), adaptive, latency, fail_share, batch_size, 1,
                             limiter)
    run = _deliver_once(cap, messages, adaptive, latency, fail_share, batch_size, None, limiter)
    print(json.dumps({"benchmark": "delivery", "run": run, "baseline_one_at_a_time": baseline,
                      "ratio_to_baseline": round(run["steady_requests_per_second"]
                                                 / baseline["steady_requests_per_second"], 1)}, indent=2))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a live process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _pipeline_done(db: Any) -> bool:
    conn = db.connect()
    try:
        def checkpoint(name: str) -> int:
            return int(conn.scalar('SELECT "offset" FROM checkpoints WHERE consumer = ?', (name,)) or 0)
        head = int(conn.scalar('SELECT MAX("offset") FROM events') or 0)
        results = int(conn.scalar('SELECT MAX("offset") FROM computation_results') or 0)
        open_rows = int(conn.scalar("SELECT COUNT(*) FROM delivery_outbox WHERE terminal = ?", (False,)))
        return (checkpoint("identity") >= head and checkpoint("realtime") >= head
                and checkpoint("activation.results") >= results > 0 and open_rows == 0)
    finally:
        conn.close()


def _wait_idle(db: Any, proc: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    """Until the worker process has connected the destination and its CPU stays flat for 1 s."""
    deadline = time.monotonic() + timeout
    last = -1.0
    while time.monotonic() < deadline and proc.poll() is None:
        conn = db.connect()
        try:
            connected = int(conn.scalar("SELECT COUNT(*) FROM activation_connections") or 0)
        except Exception:  # tables not created yet
            connected = 0
        finally:
            conn.close()
        cpu = _cpu_seconds(proc.pid)
        if connected and cpu - last < 0.05:
            return
        last = cpu
        time.sleep(1.0)


def capacity(events: int, database_url: str | None) -> None:
    """Worker capacity: EVENTS already in the log, then ``serve --role worker`` until every resulting
    message is delivered. CPU seconds of the worker process per event is the figure other load on
    the machine disturbs least; the baseline is the log append of the same events in this run."""
    from traitsync.log.event_log import EventLog
    from traitsync.store.database import Database

    rec = Recorder()
    tmp = Path(tempfile.mkdtemp(prefix="traitsync-capacity-"))
    (tmp / "traitsync.yaml").write_text(bench_config(rec.url))
    url = database_url or f"sqlite:///{tmp / 'traitsync.db'}"
    db = Database(url)
    shoppers = Shoppers()
    log = EventLog(db)
    out = (tmp / "worker.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "traitsync.cli", "serve", "-c", str(tmp / "traitsync.yaml"),
                             "--database-url", url, "--role", "worker", "--log-level", "warning"],
                            stdout=out, stderr=subprocess.STDOUT)
    try:
        # Start-up (imports, migrations, registering definitions, connecting destinations) is not
        # part of the figure: wait until the workers idle, then count CPU from there.
        _wait_idle(db, proc)
        now = time.time()
        batches = [shoppers.batch(500, now) for _ in range(max(1, events // 500))]
        cpu_before = _cpu_seconds(proc.pid)
        t0 = time.perf_counter()
        for batch in batches:
            log.append_messages("src", batch, received_at_ms=int(now * 1000))
        cpu = 0.0
        while proc.poll() is None:
            cpu = _cpu_seconds(proc.pid) - cpu_before
            if _pipeline_done(db):
                break
            time.sleep(0.2)
        wall = time.perf_counter() - t0
    finally:
        proc.terminate()
        proc.wait(30)
    n = sum(len(b) for b in batches)
    scratch = EventLog(Database(f"sqlite:///{tmp / 'baseline.db'}"))  # the baseline: an append alone
    t0 = time.perf_counter()
    for batch in batches:
        scratch.append_messages("src", batch, received_at_ms=int(now * 1000))
    append_s = time.perf_counter() - t0
    delivered = len(rec.messages())
    print(json.dumps({
        "benchmark": "capacity", "store": url.split(":")[0], "events": n, "messages_delivered": delivered,
        "messages_per_event": round(delivered / n, 2),
        "log_append_events_per_second (baseline, SQLite, alone)": round(n / append_s),
        "pipeline_events_per_second_wall (from the first append)": round(n / wall),
        "worker_cpu_seconds": round(cpu, 1),
        "pipeline_events_per_cpu_second": round(n / cpu) if cpu else None,
        "worker_cpu_ms_per_event": round(cpu * 1000 / n, 3),
        "ratio_to_append (cpu)": round((n / cpu) / (n / append_s), 3) if cpu else None,
    }, indent=2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    a = sub.add_parser("e2e")
    a.add_argument("--rate", type=int, default=1000)
    a.add_argument("--seconds", type=int, default=60)
    a.add_argument("--database-url")
    a.add_argument("--engine-partitions", type=int, help="PostgreSQL: the engine's partitions (default 1).")
    c = sub.add_parser("capacity", help="Worker CPU per event from a loaded log to delivered messages.")
    c.add_argument("--events", type=int, default=20_000)
    c.add_argument("--database-url")
    b = sub.add_parser("delivery")
    b.add_argument("--cap", type=int, default=100)
    b.add_argument("--messages", type=int, default=3000)
    b.add_argument("--no-adaptive", action="store_true", help="Limiter without the halve-on-429 slowdown.")
    b.add_argument("--latency", type=float, default=0.2, help="Seconds the receiver takes to answer.")
    b.add_argument("--fail-share", type=float, default=0.0, help="Share of requests answered 429 or 500.")
    b.add_argument("--batch-size", type=int, default=1, help="Messages per exchange.")
    b.add_argument("--limiter", choices=("shared", "local"), default="shared",
                   help="shared: the cap held in the store across processes (what serve runs); local: in-process.")
    args = parser.parse_args()
    if args.what == "e2e":
        e2e(args.rate, args.seconds, args.database_url, args.engine_partitions)
    elif args.what == "capacity":
        capacity(args.events, args.database_url)
    else:
        delivery(args.cap, args.messages, not args.no_adaptive, args.latency, args.fail_share, args.batch_size,
                 args.limiter)


if __name__ == "__main__":
    main()
