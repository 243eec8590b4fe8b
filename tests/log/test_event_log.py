"""The event log's contract, run on both SQLite and PostgreSQL."""

from __future__ import annotations

import threading

from traitsync.log import Checkpoints, EventLog, SourceBatch
from traitsync.spec.validate import Accepted, Rejection, normalise
from traitsync.store import Database


def _msg(i: int, **extra: object) -> dict[str, object]:
    return {"type": "track", "userId": f"u{i % 3}", "event": "E", "messageId": f"m{i}", **extra}


def test_append_read_in_offset_order(db_url: str) -> None:
    log = EventLog(Database(db_url))
    assert log.head() == 0
    result = log.append_messages("src", [_msg(i) for i in range(10)])
    assert (result.inserted, result.duplicates) == (10, 0)
    events = log.read(0, 100)
    assert [e.message_id for e in events] == [f"m{i}" for i in range(10)]
    assert [e.offset for e in events] == sorted(e.offset for e in events)
    assert [e.message_id for e in log.read(events[4].offset, 3)] == ["m5", "m6", "m7"]
    assert log.head() == events[-1].offset


def test_dedup_within_and_across_appends(db_url: str) -> None:
    log = EventLog(Database(db_url))
    assert log.append_messages("src", [_msg(1), _msg(1), _msg(2)]).duplicates == 1
    assert log.append_messages("other", [_msg(2), _msg(3)]).inserted == 1
    assert log.count() == 3


def _accepted(*ids: int) -> list[Accepted]:
    out = [normalise(_msg(i), received_at_ms=1_764_000_000_000) for i in ids]
    assert all(isinstance(a, Accepted) for a in out)
    return out  # type: ignore[return-value]


def test_one_group_commit_counts_each_request_alone(db_url: str) -> None:
    """Several requests in one transaction: each learns its own new rows and duplicates, in order."""
    db = Database(db_url)
    log = EventLog(db)
    log.append_messages("src", [_msg(1)])
    conn = db.connect()
    try:
        results = log.append_batches(conn, [
            SourceBatch("a", _accepted(1, 2, 3)),  # m1 is already in the log
            SourceBatch("b", [], [(Rejection("no_user_anon_id", "userId or anonymousId is required", 0), {})]),
            SourceBatch("c", _accepted(3, 4, 4, 5)),  # m3 was just written by "a"; m4 twice
        ])
    finally:
        conn.close()
    assert [(r.inserted, r.duplicates) for r in results] == [(2, 1), (0, 0), (2, 2)]
    events = log.read(0, 100)
    assert [(e.message_id, e.source_id) for e in events] == [
        ("m1", "src"), ("m2", "a"), ("m3", "a"), ("m4", "c"), ("m5", "c")]
    assert log.rejection_counts() == {"no_user_anon_id": 1}


def test_append_rows_is_the_bare_insert(db_url: str) -> None:
    db = Database(db_url)
    log = EventLog(db)
    rows = [(f"r{i}", "src", "track", "E", "u", None, 1_000 + i, 2_000, f'{{"messageId":"r{i}"}}') for i in range(5)]
    conn = db.connect()
    try:
        assert log.append_rows(conn, rows) == 5
        assert log.append_rows(conn, rows[3:]) == 0
    finally:
        conn.close()
    assert [(e.message_id, e.timestamp_ms, e.body) for e in log.read(0, 10)] == [
        (f"r{i}", 1_000 + i, {"messageId": f"r{i}"}) for i in range(5)]


def test_checkpoints_commit_with_the_consumer_output(db_url: str) -> None:
    db = Database(db_url)
    EventLog(db)
    conn = db.connect()
    with conn.transaction():
        Checkpoints.set(conn, "identity", 41)
    assert Checkpoints.get(conn, "identity") == 41
    try:
        with conn.transaction():
            Checkpoints.set(conn, "identity", 99)
            raise RuntimeError("crash before commit")
    except RuntimeError:
        pass
    assert Checkpoints.get(conn, "identity") == 41
    assert Checkpoints.get(conn, "nobody") == 0
    conn.close()


def test_concurrent_appenders_never_let_a_reader_skip_an_offset(db_url: str) -> None:
    """Offsets are visible in order: a reader that follows the head never misses a row."""
    db = Database(db_url)
    log = EventLog(db)
    writers = 4
    per_writer = 30

    def write(w: int) -> None:
        wlog = EventLog(db, auto_migrate=False)
        for b in range(per_writer):
            wlog.append_messages(f"s{w}", [{"type": "track", "userId": "u", "event": "E",
                                            "messageId": f"w{w}-{b}-{i}"} for i in range(5)])

    seen: list[int] = []
    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for t in threads:
        t.start()
    reader_conn = db.connect()
    checkpoint = 0
    while any(t.is_alive() for t in threads) or checkpoint < log.head():
        batch = log.read(checkpoint, 7, conn=reader_conn)
        if db.dialect == "postgresql":
            reader_conn.commit()
        for event in batch:
            seen.append(event.offset)
        if batch:
            checkpoint = batch[-1].offset
    for t in threads:
        t.join()
    all_offsets = [e.offset for e in log.read(0, 10_000)]
    assert len(all_offsets) == writers * per_writer * 5
    assert seen == all_offsets
