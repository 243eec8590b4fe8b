"""Concurrent delivery per destination: hung profiles do not hold back the others, order holds."""

from __future__ import annotations

import threading
import time
from typing import Any

from traitsync.delivery.backoff import Backoff
from traitsync.delivery.limiter import RateLimiter
from traitsync.delivery.outbox import Outbox
from traitsync.delivery.target import DeliveryTarget
from traitsync.delivery.worker import DestinationWorker
from traitsync.destinations import get_destination
from traitsync.store import Database

from .conftest import HANG, Receiver, Reply

PROFILES = 200
HUNG = {"u7", "u123"}  # 1% of profiles


def events(user: str) -> list[dict[str, Any]]:
    return [{"type": "track", "userId": user, "event": name, "properties": {"audience_key": "vip", "vip": flag},
             "messageId": f"{user}-{name}"}
            for name, flag in (("Audience Entered", True), ("Audience Exited", False))]


def run(db: Database, receiver: Receiver, destination: str, hung: set[str]) -> list[float]:
    """Deliver 2 messages for each of 200 profiles; latency (s) of every healthy message."""
    receiver.rules[:] = [lambda body: HANG if body["userId"] in hung else Reply(delay=0.05)]
    outbox = Outbox(db)
    conn = db.connect()
    enqueued_at = time.monotonic()
    with conn.transaction():
        for i in range(PROFILES):
            for message in events(f"u{i}"):
                outbox.enqueue(conn, destination, message["userId"], message)
    conn.close()
    adapter = get_destination("webhook")
    target = DeliveryTarget.simple(destination, adapter, adapter.parse_settings({"url": receiver.url + "/hook"}),
                                   rate=1000, concurrency=16, batch_size=1, timeout_s=1.0)
    worker = DestinationWorker(db, target, limiter=RateLimiter(1000), poll_interval=0.01,
                               backoff=Backoff(base=0.2, cap=0.5, jitter=False))
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    healthy = 2 * (PROFILES - len(hung))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = [r for r in receiver.requests if r.reply.action == "answer"]
        if len(done) >= healthy:
            break
        time.sleep(0.02)
    stop.set()
    receiver.release.set()
    thread.join(15)
    receiver.release.clear()
    return sorted(r.at - enqueued_at for r in receiver.requests
                  if r.reply.action == "answer" and r.json()["userId"] not in hung)


def p99(values: list[float]) -> float:
    return values[min(len(values) - 1, int(len(values) * 0.99))]


def test_hung_profiles_do_not_hold_back_healthy_ones_and_entry_precedes_exit(sqlite_db: Database,
                                                                               receiver: Receiver) -> None:
    baseline = run(sqlite_db, receiver, "dst_a", set())
    receiver.requests.clear()
    with_hangs = run(sqlite_db, receiver, "dst_b", HUNG)
    assert len(baseline) == 2 * PROFILES and len(with_hangs) == 2 * (PROFILES - len(HUNG))
    assert p99(with_hangs) <= 2 * p99(baseline), (p99(baseline), p99(with_hangs))
    # Per profile, what arrived arrived in order: the entry before the exit, for every profile.
    seen: dict[str, list[str]] = {}
    for request in receiver.requests:
        body = request.json()
        seen.setdefault(body["userId"], []).append(body["event"])
    for user, names in seen.items():
        if user in HUNG:
            assert names[0] == "Audience Entered" and "Audience Exited" not in names  # held behind its entry
        else:
            assert names == ["Audience Entered", "Audience Exited"]
