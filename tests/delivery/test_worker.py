"""Outbox + worker against a real local HTTP receiver, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from traitsync.delivery.backoff import Backoff
from traitsync.delivery.outbox import Outbox
from traitsync.delivery.overview import delivery_overview, recent_messages
from traitsync.delivery.target import DeliveryTarget
from traitsync.delivery.worker import DestinationWorker
from traitsync.destinations import get_destination
from traitsync.store import Database

from .conftest import HANG, RESET, Receiver, Reply

FAST = Backoff(base=0.01, cap=0.05, max_attempts=3, give_up_after=3600.0, jitter=False)
SECRET = "topsecret"


def msg(n: int, user: str = "u1", **extra: Any) -> dict[str, Any]:
    return {"type": "identify", "userId": user, "traits": {"n": n}, "messageId": f"personas_{user}_{n}", **extra}


def enqueue(db: Database, messages: list[dict[str, Any]], dest: str = "dst_hook") -> None:
    outbox = Outbox(db)
    conn = db.connect()
    try:
        with conn.transaction():
            for m in messages:
                outbox.enqueue(conn, dest, m["userId"], m, computation_id="aud_1")
    finally:
        conn.close()


def webhook_worker(db: Database, receiver: Receiver, *, backoff: Backoff = FAST, rate: float = 1000.0,
                   kind: str = "webhook", settings: dict[str, Any] | None = None, **kw: Any) -> DestinationWorker:
    adapter = get_destination(kind)
    data = settings if settings is not None else {"url": receiver.url + "/hook", "shared_secret": SECRET}
    target = DeliveryTarget.simple("dst_hook", adapter, adapter.parse_settings(data), rate=rate,
                                   timeout_s=kw.pop("timeout", 0.3), batch_size=kw.pop("batch_size", None),
                                   concurrency=kw.pop("concurrency", None), mappings=kw.pop("mappings", None),
                                   filters=kw.pop("filters", ()))
    # The production default: the store-backed limiter (paced, shared by every worker of the destination).
    return DestinationWorker(db, target, backoff=backoff, limiter=kw.pop("limiter", None), poll_interval=0.01, **kw)


def states(db: Database, dest: str = "dst_hook") -> dict[str, int]:
    conn = db.connect()
    try:
        counts = Outbox(db).state_counts(conn, dest)
        conn.commit()
        return counts
    finally:
        conn.close()


def rows(db: Database) -> list[tuple[Any, ...]]:
    conn = db.connect()
    try:
        out = conn.fetchall("SELECT message_id, state, attempts, last_error_code FROM delivery_outbox ORDER BY id")
        conn.commit()
        return out
    finally:
        conn.close()


def test_delivers_everything_with_verifiable_signatures(db: Database, receiver: Receiver) -> None:
    receiver.secret = SECRET
    sent = [msg(i, user=f"u{i % 3}") for i in range(9)]
    enqueue(db, sent)
    worker = webhook_worker(db, receiver)
    assert worker.drain(10, include_retries=True) == 9
    worker.close()
    assert states(db) == {"delivered": 9}
    assert len(receiver.requests) == 9
    assert all(r.signature_ok is True for r in receiver.requests)
    assert all(r.headers["Content-Type"] == "application/json" for r in receiver.requests)
    assert sorted(m["messageId"] for m in receiver.messages()) == sorted(m["messageId"] for m in sent)


def test_enqueue_is_idempotent_and_transactional(db: Database) -> None:
    outbox = Outbox(db)
    conn = db.connect()
    try:
        with conn.transaction():
            assert outbox.enqueue(conn, "d", "p", msg(1)) is True
            assert outbox.enqueue(conn, "d", "p", msg(1)) is False
        with pytest.raises(RuntimeError), conn.transaction():
            outbox.enqueue(conn, "d", "p", msg(2))
            raise RuntimeError("activation failed after enqueue")
        with pytest.raises(ValueError, match="messageId"), conn.transaction():
            outbox.enqueue(conn, "d", "p", {"type": "identify"})
        assert outbox.state_counts(conn, "d") == {"pending": 1}
        conn.commit()
    finally:
        conn.close()


def test_429_with_retry_after_is_retried(db: Database, receiver: Receiver) -> None:
    receiver.script = [Reply(429, {"Retry-After": "0.2"})]
    enqueue(db, [msg(1)])
    worker = webhook_worker(db, receiver)
    assert worker.run_once() == 1
    assert rows(db) == [("personas_u1_1", "retry_wait", 1, "429")]
    assert worker.limiter.blocked_until > time.monotonic()
    worker.drain(10, include_retries=True)
    worker.close()
    assert rows(db) == [("personas_u1_1", "delivered", 2, None)]
    assert [r.reply.status for r in receiver.requests] == [429, 200]
    assert receiver.requests[1].at - receiver.requests[0].at >= 0.2


def test_500_then_success_and_attempt_log(db: Database, receiver: Receiver) -> None:
    receiver.script = [Reply(500), Reply(503)]
    enqueue(db, [msg(1)])
    worker = webhook_worker(db, receiver)
    worker.drain(10, include_retries=True)
    conn = db.connect()
    [entry] = recent_messages(conn, "dst_hook")
    conn.close()
    worker.close()
    assert entry.state == "delivered" and entry.message == msg(1)
    assert [(a.attempt, a.http_status, a.outcome, a.code) for a in entry.attempts] == [
        (1, 500, "retry", "500"), (2, 503, "retry", "503"), (3, 200, "ok", None)]


def test_400_is_dead_lettered_and_does_not_block_the_key(db: Database, receiver: Receiver) -> None:
    receiver.rules.append(lambda body: Reply(400, body=b'{"error":"bad"}') if body["traits"]["n"] == 1 else None)
    enqueue(db, [msg(1), msg(2)])
    worker = webhook_worker(db, receiver)
    worker.drain(10, include_retries=True)
    worker.close()
    assert rows(db) == [("personas_u1_1", "dead", 1, "400"), ("personas_u1_2", "delivered", 1, None)]


def test_failing_key_holds_back_later_messages_of_that_profile_only(db: Database, receiver: Receiver) -> None:
    failures = {"left": 2}

    def flaky(body: Any) -> Reply | None:
        if body["userId"] == "a" and body["traits"]["n"] == 1 and failures["left"] > 0:
            failures["left"] -= 1
            return Reply(502)
        return None

    receiver.rules.append(flaky)
    enqueue(db, [msg(1, "a"), msg(2, "a"), msg(3, "a"), msg(1, "b"), msg(2, "b")])
    worker = webhook_worker(db, receiver)
    worker.run_once()  # each profile's run is one exchange: a1 fails so a2, a3 are not sent; b1, b2 go
    assert sorted((m["userId"], m["traits"]["n"]) for m in receiver.messages()) == [("b", 1), ("b", 2)]
    assert [m["userId"] for m in receiver.messages()].count("a") == 0
    assert states(db) == {"retry_wait": 1, "pending": 2, "delivered": 2}
    worker.drain(10, include_retries=True)
    worker.close()
    delivered = [(m["userId"], m["traits"]["n"]) for m in receiver.messages()]
    assert [n for u, n in delivered if u == "a"] == [1, 2, 3]
    assert [n for u, n in delivered if u == "b"] == [1, 2]
    assert states(db) == {"delivered": 5}


def test_timeout_and_connection_reset_are_retried(db: Database, receiver: Receiver) -> None:
    receiver.script = [HANG, RESET]
    enqueue(db, [msg(1)])
    worker = webhook_worker(db, receiver, timeout=0.2)
    worker.drain(10, include_retries=True)
    conn = db.connect()
    [entry] = recent_messages(conn, "dst_hook")
    conn.close()
    worker.close()
    assert [(a.http_status, a.outcome, a.code) for a in entry.attempts] == [
        (None, "retry", "ETIMEDOUT"), (None, "retry", "ECONNRESET"), (200, "ok", None)]
    assert entry.state == "delivered"


def test_connection_refused_is_retried(db: Database) -> None:
    enqueue(db, [msg(1)])
    adapter = get_destination("webhook")
    worker = DestinationWorker(db, DeliveryTarget.simple("dst_hook", adapter, adapter.parse_settings(
        {"url": "http://127.0.0.1:9/x"}), timeout_s=0.5), backoff=FAST)
    assert worker.run_once() == 1
    worker.close()
    assert rows(db) == [("personas_u1_1", "retry_wait", 1, "ECONNREFUSED")]


def test_dead_letter_after_attempts_and_window_then_replay_same_ids(db: Database, receiver: Receiver) -> None:
    receiver.rules.append(lambda body: Reply(503) if body["userId"] != "ok" else None)
    sent = [msg(1, "x"), msg(1, "y")]
    enqueue(db, sent)
    backoff = Backoff(base=0.01, cap=0.02, max_attempts=3, give_up_after=0.3, jitter=False)
    worker = webhook_worker(db, receiver, backoff=backoff)
    started = time.time()
    worker.drain(10, include_retries=True)
    assert time.time() - started >= 0.3  # not before the window, however many attempts
    dead = rows(db)
    assert [(r[1], r[3]) for r in dead] == [("dead", "503"), ("dead", "503")]
    assert all(r[2] >= 3 for r in dead)
    failed_ids = [json.loads(r.body)["messageId"] for r in receiver.requests]
    assert set(failed_ids) == {m["messageId"] for m in sent}

    receiver.rules.clear()
    outbox = Outbox(db)
    assert outbox.replay("dst_hook", 0, int(time.time() * 1000) + 1, code="500") == 0
    assert outbox.replay("dst_hook", 0, int(time.time() * 1000) + 1, code="503") == 2
    worker.drain(10, include_retries=True)
    worker.close()
    assert states(db) == {"delivered": 2}
    assert sorted(m["messageId"] for m in receiver.messages()) == sorted(m["messageId"] for m in sent)


def test_auth_failure_pauses_the_destination(db: Database, receiver: Receiver) -> None:
    receiver.script = [Reply(401)]
    enqueue(db, [msg(1, "a"), msg(1, "b")])
    worker = webhook_worker(db, receiver, batch_size=10, auth_pause_s=60.0)
    worker.run_once()
    assert worker.paused and worker.last_pause_code == "401"
    assert len(receiver.requests) == 1  # the second request of the batch was not sent
    assert states(db) == {"retry_wait": 1, "pending": 1}
    assert worker.run_once() == 0
    worker.resume()
    conn = db.connect()
    with conn.transaction():
        conn.execute("UPDATE delivery_outbox SET next_attempt_at_ms = 0")
    conn.close()
    worker.drain(10)
    worker.close()
    assert states(db) == {"delivered": 2}


def test_unsupported_messages_are_filtered_and_overview_counts_stages(db: Database, receiver: Receiver) -> None:
    receiver.rules.append(lambda body: Reply(404) if body.get("userId") == "gone" else None)
    receiver.script = [Reply(500)]
    enqueue(db, [msg(1, "a"), msg(1, "gone"), {"type": "page", "userId": "p", "messageId": "pg1"}, msg(1, "c")])
    conn = db.connect()
    with conn.transaction():
        Outbox(db).enqueue(conn, "dst_hook", "z", msg(1, "z"), filtered_reason="FILTERED_BY_INTEGRATIONS_OBJECT")
    conn.close()
    worker = webhook_worker(db, receiver, backoff=Backoff(base=60.0, jitter=False))
    worker.run_once()
    worker.close()
    conn = db.connect()
    now = int(time.time() * 1000)
    view = delivery_overview(conn, since_ms=now - 60_000, until_ms=now + 1)["dst_hook"]
    empty = delivery_overview(conn, since_ms=0, until_ms=1, destination_id="dst_hook")["dst_hook"]
    conn.close()
    assert view.as_dict() == {
        "destination_id": "dst_hook",
        "filtered_at_destination": {"FILTERED_BY_INTEGRATIONS_OBJECT": 1, "UNSUPPORTED_EVENT_TYPE": 1},
        "pending": 0, "pending_retry": 1, "failed_delivery": {"404": 1}, "successful_delivery": 1,
        "retried_then_delivered": 0}
    assert view.total == 5 and empty.total == 0


def test_clean_shutdown_releases_unsent_claims(db: Database, receiver: Receiver) -> None:
    enqueue(db, [msg(i, f"u{i}") for i in range(6)])
    worker = webhook_worker(db, receiver, rate=1.0, batch_size=6)
    worker.start()
    deadline = time.monotonic() + 5
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    counts = states(db)
    assert "in_flight" not in counts
    assert counts == {"delivered": len(receiver.requests), "pending": 6 - len(receiver.requests)}
    assert 1 <= len(receiver.requests) <= 2
    conn = db.connect()
    assert conn.scalar("SELECT COUNT(*) FROM delivery_attempts") == len(receiver.requests)
    conn.commit()
    conn.close()


def test_expired_lease_is_reclaimed(db: Database, receiver: Receiver) -> None:
    enqueue(db, [msg(1)])
    outbox = Outbox(db)
    conn = db.connect()
    [claimed] = outbox.claim(conn, "dst_hook", 10, lease_ms=50)  # a worker that then dies
    assert outbox.claim(conn, "dst_hook", 10, lease_ms=50) == []
    time.sleep(0.08)
    conn.close()
    worker = webhook_worker(db, receiver)
    assert worker.run_once() == 1
    worker.close()
    assert rows(db) == [(claimed.message_id, "delivered", 1, None)]


def test_batched_webhook_and_rate_cap_at_the_receiver(db: Database, receiver: Receiver) -> None:
    enqueue(db, [msg(i, f"u{i}") for i in range(24)])
    worker = webhook_worker(db, receiver, rate=8.0, batch_size=24,
                            settings={"url": receiver.url + "/hook", "batch_size": 2})
    worker.drain(20)
    worker.close()
    assert states(db) == {"delivered": 24}
    assert len(receiver.requests) == 12 and all(isinstance(r.json(), list) for r in receiver.requests)
    times = sorted(r.at for r in receiver.requests)
    assert max(sum(1 for t in times if start <= t <= start + 1.0) for start in times) <= 8


def test_segment_forwarder_and_list_ops_filtered(db: Database, receiver: Receiver) -> None:
    enqueue(db, [msg(1), msg(2, "u2"), {"type": "audience_list", "action": "add", "userId": "x",
                                        "messageId": "l1", "members": []}])
    worker = webhook_worker(db, receiver, kind="segment",
                            settings={"write_key": "wk", "endpoint": receiver.url})
    worker.drain(10)
    worker.close()
    [req] = receiver.requests
    assert req.path == "/v1/batch" and req.headers["Authorization"] == "Basic d2s6"
    assert [m["messageId"] for m in req.json()["batch"]] == ["personas_u1_1", "personas_u2_2"]
    assert states(db) == {"delivered": 2, "filtered": 1}


def test_jsonl_file_sink(db: Database, tmp_path: Path) -> None:
    out = tmp_path / "sub" / "out.jsonl"
    sent = [msg(i, f"u{i}") for i in range(3)]
    enqueue(db, sent, dest="dst_file")
    adapter = get_destination("jsonl")
    target = DeliveryTarget.simple("dst_file", adapter, adapter.parse_settings({"path": str(out)}))
    worker = DestinationWorker(db, target)
    assert worker.drain(5) == 3
    worker.close()
    assert [json.loads(line) for line in out.read_text().splitlines()] == sent


def test_delivery_leaves_a_receipt_until_it_is_applied(db: Database, receiver: Receiver) -> None:
    """Confirmation reaches activation as data: a delivered row waits, unapplied, with its meta."""
    from traitsync.delivery import receipts

    outbox = Outbox(db)
    conn = db.connect()
    with conn.transaction():
        outbox.enqueue(conn, "dst_hook", "u1", msg(1), meta={"confirms": "event", "n": 1})
        outbox.enqueue(conn, "dst_hook", "u2", msg(1, "u2"), meta={"confirms": "event", "n": 2})
    receiver.rules.append(lambda body: Reply(400) if body["userId"] == "u2" else None)
    worker = webhook_worker(db, receiver)
    worker.drain(5)
    worker.close()
    with conn.transaction():
        got = receipts.unapplied(conn)
        assert [(r.destination_id, r.meta) for r in got] == [("dst_hook", {"confirms": "event", "n": 1})]
        assert receipts.busy(conn, "dst_hook", "u1") and not receipts.busy(conn, "dst_hook", "u2")
        receipts.mark_applied(conn, [r.outbox_id for r in got])
    with conn.transaction():
        assert receipts.unapplied(conn) == [] and not receipts.busy(conn, "dst_hook", "u1")
    conn.close()


def test_two_workers_on_postgresql_share_without_duplicates_or_reordering(pg_db: Database,
                                                                           receiver: Receiver) -> None:
    sent = [msg(n, f"u{u}") for n in range(4) for u in range(10)]
    enqueue(pg_db, sent)
    workers = [webhook_worker(pg_db, receiver, batch_size=3) for _ in range(2)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 20
    while states(pg_db) != {"delivered": 40} and time.monotonic() < deadline:
        time.sleep(0.02)
    for w in workers:
        w.stop()
    assert states(pg_db) == {"delivered": 40}
    got = [(m["userId"], m["traits"]["n"]) for m in receiver.messages()]
    assert len(got) == 40 and len(set(got)) == 40
    for u in range(10):
        assert [n for user, n in got if user == f"u{u}"] == [0, 1, 2, 3]


def test_webhook_list_mode_records_created_list_id(db: Database, receiver: Receiver) -> None:
    from traitsync.activation import ActivationTarget, ComputationRef, Identifier, list_messages, plan_list_sync

    receiver.rules.append(lambda body: Reply(200, body=b'{"externalId":"ext-7"}')
                          if body.get("action") == "create" else None)
    aud = ComputationRef("aud_1", "vip", "audience", "VIP")
    target = ActivationTarget("dst_hook", "Webhook", "spa_1")
    diff = plan_list_sync(None, {f"p{i}": [Identifier("email", f"{i}@x.io")] for i in range(5)})
    ops = list_messages(aud, diff, target, sync_id="s1", timestamp_ms=0, batch_size=2)
    outbox = Outbox(db)
    conn = db.connect()
    with conn.transaction():
        for op in ops:
            outbox.enqueue(conn, "dst_hook", "list:aud_1", op, computation_id="aud_1")
    worker = webhook_worker(db, receiver)
    worker.drain(10)
    worker.close()
    assert [(m["action"], len(m["members"])) for m in receiver.messages()] == [
        ("create", 0), ("add", 2), ("add", 2), ("add", 1)]
    result = conn.scalar("SELECT result FROM delivery_outbox WHERE message_id = ?", (ops[0]["messageId"],))
    conn.commit()
    conn.close()
    assert json.loads(result) == {"external_id": "ext-7"}
