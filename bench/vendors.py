"""Vendor adapters at their caps: N changes through the real delivery worker to a slow fake vendor.

For each vendor (Iterable at 500 requests/s, Braze at 100, Kinesis at its default 20 calls/s of
up to 500 records), CHANGES Engage changes (audience identifies, one profile each) are queued
in a SQLite store and delivered by one ``DestinationWorker`` whose limiter is the store-backed
``SharedRateLimiter``, exactly as ``traitsync`` runs it. The fake vendor answers every request
after 200 ms, like a real API, in its own process so it does not share the worker's
interpreter:

* ``--server asyncio`` (default): a minimal asyncio HTTP/1.1 server answering each vendor's
  success body (Kinesis: one result per record) after ``--latency`` without blocking a thread;
* ``--server threaded``: the test suite's ``FakeVendor`` (a thread per connection, JSON Schema
  validation of every body) with its ``delay``.

Reported per vendor, from the fake's arrival times: requests/s and changes/s over the run and
in the steady middle (10%-90% of requests), as a share of the cap; the largest number of
requests in any sliding 1 s window (must never exceed the cap); requests in flight at the fake
(largest and median at arrival); and that every change was delivered.

    .venv/bin/python bench/vendors.py                         # 100,000 changes per vendor
    .venv/bin/python bench/vendors.py --changes 5000 --vendors iterable
    .venv/bin/python bench/vendors.py --concurrency 128       # more than the platform default
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

CAPS = {"iterable": 500.0, "braze": 100.0, "kinesis": 20.0}
KEYS = {"iterable": "bench-iterable-key", "braze": "bench-braze-key"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- the fake vendors (child process) -----------------------------------------------------------

def answer_for(path: str, target: str | None, body: bytes) -> tuple[int, bytes]:
    if target is not None:  # Kinesis PutRecords: one success per record, in order
        count = len(json.loads(body)["Records"])
        records = [{"SequenceNumber": str(i), "ShardId": "shardId-000000000000"} for i in range(count)]
        return 200, json.dumps({"FailedRecordCount": 0, "Records": records}).encode()
    if path.startswith("/users/track"):
        return 201, b'{"message":"success"}'
    return 200, b'{"msg":"","code":"Success","params":null}'


def serve_asyncio(port: int, latency: float, out: str, ready: Any, done: Any) -> None:
    arrivals: list[tuple[float, int]] = []
    state = {"in_flight": 0}

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                _method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length") or 0))
                state["in_flight"] += 1
                arrivals.append((time.time(), state["in_flight"]))
                await asyncio.sleep(latency)
                status, data = answer_for(path, headers.get("x-amz-target"), body)
                writer.write(b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                             % (status, len(data)) + data)
                await writer.drain()
                state["in_flight"] -= 1
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
        assert server.is_serving()
        ready.set()
        while not done.is_set():
            await asyncio.sleep(0.1)
        Path(out).write_text(json.dumps(arrivals))
        os._exit(0)  # the worker has stopped: no need to wind down idle keep-alive connections

    asyncio.run(main())


def serve_threaded(port: int, latency: float, out: str, ready: Any, done: Any, vendor: str) -> None:
    import re
    import threading

    from tests.destinations.fakes.braze import braze_fake
    from tests.destinations.fakes.iterable import iterable_fake
    from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

    lock = threading.Lock()
    state = {"in_flight": 0}
    arrivals: list[tuple[float, int]] = []
    if vendor == "iterable":
        fake = iterable_fake(KEYS["iterable"], delay=latency)
    elif vendor == "braze":
        fake = braze_fake(KEYS["braze"])
        fake.delay = latency
    else:
        def put_records(seen: Seen, _m: re.Match[str]) -> Answer:
            status, data = answer_for(seen.path, "PutRecords", seen.body)
            return Answer(status, json.loads(data))
        fake = FakeVendor([Route("POST", "/", put_records)], delay=latency)
    inner = fake._answer

    def counted(seen: Any) -> Any:
        with lock:
            state["in_flight"] += 1
            arrivals.append((time.time(), state["in_flight"]))
        try:
            answer = inner(seen)
            time.sleep(latency)  # the delay is applied here so in-flight counts include it
            answer.delay = 0.0
            return answer
        finally:
            with lock:
                state["in_flight"] -= 1

    fake.delay = 0.0
    fake._answer = counted  # type: ignore[method-assign]
    from http.server import ThreadingHTTPServer
    fake.server.server_close()
    handler = fake.server.RequestHandlerClass
    fake.server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    fake.server.daemon_threads = True
    fake.server.request_queue_size = 1024
    thread = threading.Thread(target=fake.server.serve_forever, daemon=True)
    thread.start()
    ready.set()
    done.wait()
    fake.server.shutdown()
    if fake.violations:
        print(f"fake violations: {fake.violations[:3]}", file=sys.stderr)
    Path(out).write_text(json.dumps(arrivals))


# -- one vendor run ---------------------------------------------------------------------------------

def message(n: int) -> dict[str, Any]:
    return {"type": "identify", "userId": f"user-{n}", "messageId": f"bench-{n}",
            "timestamp": "2026-11-30T12:00:00.000Z",
            "traits": {"email": f"user{n}@example.com", "vip_users": True},
            "context": {"personas": {"computation_class": "audience", "computation_key": "vip_users",
                                     "computation_id": "aud_1", "namespace": "spa_1", "space_id": "spa_1"}}}


def settings_for(vendor: str, url: str) -> dict[str, Any]:
    if vendor == "iterable":
        return {"apiKey": KEYS["iterable"], "endpoint": url}
    if vendor == "braze":
        return {"api_key": KEYS["braze"], "endpoint": url}
    return {"awsRegion": "us-east-1", "streamName": "bench", "access_key_id": "AKIDBENCH",
            "secret_access_key": "bench-secret", "endpoint": url}


def max_window(times: list[float], width: float = 1.0) -> int:
    worst = j = 0
    for i, t in enumerate(times):
        while times[j] <= t - width:
            j += 1
        worst = max(worst, i - j + 1)
    return worst


def run(vendor: str, changes: int, server: str, latency: float, concurrency: int | None,
        cap: float | None, backlog: int, max_seconds: float) -> dict[str, Any]:
    from traitsync.delivery.outbox import Outbox
    from traitsync.delivery.shared_limiter import SharedRateLimiter
    from traitsync.delivery.target import DeliveryTarget
    from traitsync.delivery.worker import DestinationWorker
    from traitsync.destinations import get_destination
    from traitsync.store import Database, migrate

    rate = cap or CAPS[vendor]
    tmp = Path(tempfile.mkdtemp(prefix=f"traitsync-vendors-{vendor}-"))
    out = str(tmp / "arrivals.json")
    port = free_port()
    ctx = mp.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    if server == "asyncio":
        proc = ctx.Process(target=serve_asyncio, args=(port, latency, out, ready, done), daemon=True)
    else:
        proc = ctx.Process(target=serve_threaded, args=(port, latency, out, ready, done, vendor), daemon=True)
    proc.start()
    if not ready.wait(30):
        raise SystemExit("the fake vendor did not start")
    url = f"http://127.0.0.1:{port}"

    db = Database(f"sqlite:///{tmp / 'db.sqlite'}")
    migrate(db)
    outbox = Outbox(db)
    fed = {"n": 0}

    def enqueue(count: int) -> None:
        conn = db.connect()
        try:
            with conn.transaction():
                for n in range(fed["n"], min(changes, fed["n"] + count)):
                    outbox.enqueue(conn, "dst", f"p{n}", message(n), computation_id="aud_1")
            fed["n"] = min(changes, fed["n"] + count)
        finally:
            conn.close()

    stop_feeding = threading.Event()

    def feed() -> None:
        """Keep about ``backlog`` changes waiting, as a live stream of changes would."""
        conn = db.connect()
        try:
            while fed["n"] < changes and not stop_feeding.is_set():
                waiting = int(conn.scalar("SELECT count(*) FROM delivery_outbox WHERE destination_id = ? AND "
                                          "state = 'pending'", ("dst",)) or 0)
                conn.commit()
                if waiting < backlog // 2:
                    enqueue(backlog - waiting)
                else:
                    stop_feeding.wait(0.02)
        finally:
            conn.close()

    enqueue(changes if backlog <= 0 else backlog)
    feeder = threading.Thread(target=feed, daemon=True)

    adapter = get_destination(vendor)
    target = DeliveryTarget.simple("dst", adapter, adapter.parse_settings(settings_for(vendor, url)), rate=rate,
                                   concurrency=concurrency, timeout_s=10.0)
    limiter = SharedRateLimiter(db, "dst", rate)
    worker = DestinationWorker(db, target, limiter=limiter, poll_interval=0.05)
    started = time.time()
    if backlog > 0:
        feeder.start()
        worker.start()
        while time.time() - started < max_seconds:
            time.sleep(0.2)
            if fed["n"] >= changes:
                conn = db.connect()
                open_rows = conn.scalar("SELECT count(*) FROM delivery_outbox WHERE destination_id = ? AND "
                                        "state IN ('pending', 'in_flight', 'retry_wait')", ("dst",))
                conn.commit()
                conn.close()
                if not open_rows:
                    break
        stop_feeding.set()
        worker.stop()
    else:
        worker.drain(timeout=max_seconds, include_retries=True)
    elapsed = time.time() - started
    worker.close()
    limiter.close()
    done.set()
    proc.join(30)

    conn = db.connect()
    states = dict(conn.fetchall("SELECT state, count(*) FROM delivery_outbox GROUP BY state"))
    conn.commit()
    conn.close()
    arrivals = json.loads(Path(out).read_text())
    times = sorted(a[0] for a in arrivals)
    in_flight = [a[1] for a in arrivals]
    span = times[-1] - times[0] if len(times) > 1 else elapsed
    lo, hi = int(len(times) * 0.1), max(int(len(times) * 0.9) - 1, 0)
    steady = (hi - lo) / (times[hi] - times[lo]) if hi > lo and times[hi] > times[lo] else float("nan")
    per_request = changes / max(1, len(times))
    return {
        "vendor": vendor, "server": server, "latency_s": latency, "cap_requests_per_second": rate,
        "backlog": backlog if backlog > 0 else "all at once", "changes_queued": fed["n"],
        "concurrency": target.concurrency, "batch_size": target.batch_size, "changes": changes,
        "delivered": states.get("delivered", 0),
        "delivered_per_second_wall": round(states.get("delivered", 0) / elapsed, 1), "states": states,
        "requests": len(times),
        "seconds": round(elapsed, 1),
        "requests_per_second": round(len(times) / span, 1), "share_of_cap": round(len(times) / span / rate, 3),
        "steady_requests_per_second": round(steady, 1), "steady_share_of_cap": round(steady / rate, 3),
        "changes_per_second": round(changes / span, 1),
        "steady_changes_per_second": round(steady * per_request, 1),
        "max_requests_in_any_1s_window": max_window(times),
        "in_flight_max": max(in_flight) if in_flight else 0,
        "in_flight_median": statistics.median(in_flight) if in_flight else 0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=100_000, help="Changes per vendor (default 100,000).")
    parser.add_argument("--vendors", default="iterable,braze,kinesis")
    parser.add_argument("--server", choices=["asyncio", "threaded"], default="asyncio")
    parser.add_argument("--latency", type=float, default=0.2, help="Seconds the fake waits before answering.")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="Requests in flight per worker (default: the platform's, from the cap).")
    parser.add_argument("--cap", type=float, default=None, help="Override every vendor's cap (requests/s).")
    parser.add_argument("--backlog", type=int, default=2000,
                        help="Changes kept waiting in the outbox while feeding (0: queue all CHANGES at once).")
    parser.add_argument("--max-seconds", type=float, default=1800.0, help="Stop a vendor's run after this long.")
    args = parser.parse_args()
    os.environ.setdefault("TRAITSYNC_LOG_LEVEL", "WARNING")
    for vendor in [v.strip() for v in args.vendors.split(",") if v.strip()]:
        if vendor not in CAPS:
            raise SystemExit(f"unknown vendor {vendor!r}; choose from {', '.join(CAPS)}")
        result = run(vendor, args.changes, args.server, args.latency, args.concurrency, args.cap, args.backlog,
                     args.max_seconds)
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
