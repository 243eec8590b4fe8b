"""messageIds do not depend on chunking: one id always carries one content.

The same log is replayed into two fresh stores, once with identity and engine chunks of 1 and
once of 1000. Every result of both runs is turned into the messages activation would build
(identify and track, one per identifier): for every messageId seen in either run, the message
is the same. Before versions followed the input's offsets, a counter collapsed within a chunk
gave one id two values (``orders`` 1 in one run, 2 in the other, same id).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import orjson

from traitsync.activation.payloads import identify_message, track_message
from traitsync.activation.types import ActivationTarget, ComputationRef, Identifier
from traitsync.compute.realtime import RealtimeEngine
from traitsync.identity import IdentityWorker, default_identity_config
from traitsync.log.event_log import EventLog
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store.database import Database

from .conftest import T0, Clock, D, defs

DEFS = """\
computed_traits:
  - key: orders
    query: "event('Order').count()"
  - key: spend
    query: "event('Order').sum(property('total'))"
  - key: last_page
    query: "event('Page').last(property('url'))"
  - key: recent_orders
    query: "event('Order').within(1 days).count()"
audiences:
  - key: pro
    query: "trait('plan') = 'pro'"
  - key: buyer
    query: "event('Order').within(1 days).count() >= 1"
  - key: big
    query: "trait('spend') > 100"
  - key: pro_buyer
    query: "audience('pro') AND audience('buyer')"
  - key: lapsed
    query: "event('Page').count() >= 2 AND event('Order').count() = 0"
"""

TARGET = ActivationTarget(destination_id="dst", destination_name="Hook", space_id="spa")


def log_messages(seed: int = 7, n: int = 400) -> list[dict[str, Any]]:
    """Users switching plans (enter, exit, enter again), ordering, browsing, some anonymous first."""
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    for i in range(n):
        u = rnd.randrange(8)
        t = T0 - 3 * D + i * (3 * D // n) - rnd.randrange(3_600_000)  # mostly in order, some late
        who: dict[str, Any] = {"userId": f"u{u}"}
        if u >= 6 and rnd.random() < 0.5:
            who = {"anonymousId": f"a{u}"}
        elif u >= 6 and rnd.random() < 0.3:
            who = {"userId": f"u{u}", "anonymousId": f"a{u}"}  # links the anonymous profile: a merge
        r = rnd.random()
        if r < 0.25:
            msg = {"type": "identify", **who, "traits": {"plan": rnd.choice(["pro", "free"])}}
        elif r < 0.6:
            msg = {"type": "track", **who, "event": "Order", "properties": {"total": rnd.randrange(60)}}
        else:
            msg = {"type": "track", **who, "event": "Page", "properties": {"url": f"/p{rnd.randrange(4)}"}}
        out.append({**msg, "messageId": f"m{i}", "timestamp": format_iso_ms(t)})
    return out


def run(path: Path, chunk: int, messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Identity and engine over the log in chunks of ``chunk``, then one day of timers.

    The engine reads the traits identity has committed, so with small chunks a plan switch is
    seen as it happens (an audience on the plan enters, exits and enters again)."""
    db = Database(f"sqlite:///{path}")
    log = EventLog(db)
    for i in range(0, len(messages), 50):  # appended as several requests, received at one moment
        log.append_messages("src_web", messages[i:i + 50], received_at_ms=T0)
    clock = Clock(T0)
    identity = IdentityWorker(db, default_identity_config(), chunk_size=chunk)
    engine = RealtimeEngine(db, defs(DEFS), clock=clock, chunk_size=chunk)
    while identity.run_once(chunk) > 0:  # as the running server does: each stage follows the other
        while engine.run_once() > 0:
            pass
    for _ in range(4):
        clock.ms += D // 4
        engine.fire_due(clock.ms)
    conn = db.connect()
    rows = conn.fetchall('SELECT r.computation_id, r.computation_key, r.computation_class, r.profile_id, '
                         'r.new_value, r.version, r.as_of_ms FROM computation_results r ORDER BY r."offset"')
    ids: dict[str, list[Identifier]] = {}
    for pid, t, v in conn.fetchall("SELECT profile_id, id_type, value FROM profile_external_ids "
                                   "ORDER BY event_offset, id_type, value"):
        ids.setdefault(str(pid), []).append(Identifier(str(t), str(v)))
    conn.close()
    engine.close()
    identity.close()
    return [(*r[:4], orjson.loads(r[4]), int(r[5]), int(r[6]), ids.get(str(r[3]), [])) for r in rows]


def messages_by_id(results: list[tuple[Any, ...]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for comp_id, key, klass, pid, value, version, as_of, idents in results:
        comp = ComputationRef(id=comp_id, key=key, kind="audience" if klass == "audience" else "trait", name=key)
        sent = bool(value) if comp.kind == "audience" else value
        for ident in idents:
            kw: dict[str, Any] = {"profile_id": pid, "version": version, "timestamp_ms": as_of,
                                  "profile_identifiers": idents}
            for msg in (identify_message(comp, sent, ident, TARGET, **kw),
                        track_message(comp, sent, ident, TARGET, **kw)):
                out.setdefault(msg["messageId"], []).append(msg)
    return out


def test_chunk_sizes_1_and_1000_never_give_one_id_two_contents(tmp_path: Path) -> None:
    messages = log_messages()
    fine = run(tmp_path / "one.db", 1, messages)
    coarse = run(tmp_path / "many.db", 1000, messages)
    a, b = messages_by_id(fine), messages_by_id(coarse)
    # Within one run an id is never reused (an entry, exit and re-entry have three ids).
    assert all(len(v) == 1 for v in a.values())
    assert all(len(v) == 1 for v in b.values())
    shared = a.keys() & b.keys()
    for mid in shared:
        assert a[mid] == b[mid], mid
    # Chunks collapse intermediate values, so the coarse run sends fewer messages. A change whose
    # last input in the chunk is the one that made the value has the fine run's id (same change,
    # same id); one whose later inputs left the value as it was has a newer version, a new id.
    assert len(b) < len(a)
    assert shared
    # The scenario does exercise re-entries, timer exits and merges.
    reentries = [r for r in fine if r[2] == "audience" and r[4] is True
                 and sum(1 for s in fine if s[:4] == r[:4] and s[4] is True) > 1]
    assert reentries
    assert any(r[4] is False for r in fine if r[1] == "buyer")


def test_replay_with_the_same_chunks_gives_the_same_ids(tmp_path: Path) -> None:
    messages = log_messages(seed=3, n=150)
    first = messages_by_id(run(tmp_path / "a.db", 7, messages))
    second = messages_by_id(run(tmp_path / "b.db", 7, messages))
    assert first == second
