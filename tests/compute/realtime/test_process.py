"""The engine with real time and real processes: exits on the wall clock, and SIGKILL mid-stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tests.compute.realtime.conftest import T0, defs
from traitsync.compute.realtime import ComputationResults, RealtimeEngine
from traitsync.identity import IdentityWorker, default_identity_config
from traitsync.log.event_log import EventLog
from traitsync.spec.timestamps import format_iso_ms
from traitsync.store.database import Database

TEN_SECONDS = """
audiences:
  - key: active_10s
    condition: {performed: {event: Ping, at_least: 1, within: 10s}}
"""


def test_exit_happens_between_10_and_11_seconds_with_the_real_clock(sqlite_url: str) -> None:
    db = Database(sqlite_url)
    log = EventLog(db)
    identity = IdentityWorker(db, default_identity_config())
    engine = RealtimeEngine(db, defs(TEN_SECONDS))
    stop = threading.Event()
    stop_identity = threading.Event()
    threads = [threading.Thread(target=engine.run_forever, args=(stop,)),
               threading.Thread(target=identity.run_forever, args=(stop_identity, 0.05))]
    for t in threads:
        t.start()
    try:
        sent = int(time.time() * 1000)
        log.append_messages("src_web", [{"type": "track", "userId": "u1", "event": "Ping", "messageId": "ping-1",
                                         "timestamp": format_iso_ms(sent)}], received_at_ms=sent)
        reader = ComputationResults(db)
        deadline = time.time() + 20
        rows: list[Any] = []
        while time.time() < deadline and len(rows) < 2:
            rows = reader.read(0)
            time.sleep(0.02)
        exit_seen = time.time() * 1000
        enter, leave = rows
        assert (enter.new_value, enter.cause) == (True, "ping-1")
        assert enter.at_ms - sent < 1000
        assert (leave.old_value, leave.new_value, leave.cause, leave.version) == (True, False, "timer", 2)
        assert leave.as_of_ms >= sent + 10_000
        assert 10_000 <= leave.at_ms - sent <= 11_000
        assert exit_seen - sent <= 11_000
    finally:
        stop.set()
        stop_identity.set()
        engine.wake()
        for t in threads:
            t.join(10)


KILL_DEFS = """
computed_traits:
  - key: n
    query: "event('Order').count()"
  - key: spend_30s
    query: "event('Order').within(30 seconds).sum(property('total'))"
  - key: skus
    query: "event('Order').unique(property('sku'))"
audiences:
  - key: buyer_20s
    condition: {performed: {event: Order, at_least: 2, within: 20s}}
  - key: big
    condition: {all: [{in_audience: buyer_20s}, {trait: {key: spend_30s, op: greater_than, value: 30}}]}
"""


def _fill(url: str) -> None:
    log = EventLog(Database(url))
    msgs = []
    for i in range(240):
        user = f"u{i % 9}"
        extra = {"anonymousId": f"a{i % 4}"} if i % 17 == 0 else {}
        msgs.append({"type": "track", "userId": user, **extra, "event": "Order", "messageId": f"m{i}",
                     "timestamp": format_iso_ms(T0 - (i * 7919 % 60_000)),
                     "properties": {"total": i % 13, "sku": f"s{i % 5}"}})
    log.append_messages("src_web", msgs, received_at_ms=T0 - 120_000)


def _snapshot(url: str) -> tuple[list[Any], list[Any]]:
    conn = Database(url).connect()
    try:
        values = conn.fetchall("SELECT profile_id, computation_key, value, version FROM computed_values "
                               "ORDER BY profile_id, computation_key")
        results = conn.fetchall("SELECT profile_id, computation_key, old_value, new_value, version "
                                "FROM computation_results ORDER BY profile_id, computation_key, version")
        return [tuple(r) for r in values], [tuple(r) for r in results]
    finally:
        conn.close()


def _child(url: str, config: Path, pause: float) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    return subprocess.Popen([sys.executable, str(Path(__file__).with_name("_engine_proc.py")), url, str(config),
                             str(T0), str(pause)], stdout=subprocess.PIPE, text=True, env=env)


def test_sigkill_mid_stream_then_restart_gives_the_uninterrupted_results(tmp_path: Path) -> None:
    config = tmp_path / "traitsync.yaml"
    config.write_text(KILL_DEFS)
    clean, killed = f"sqlite:///{tmp_path / 'clean.db'}", f"sqlite:///{tmp_path / 'killed.db'}"
    for url in (clean, killed):
        _fill(url)
    proc = _child(clean, config, 0.0)
    assert proc.wait(60) == 0
    for _ in range(3):  # kill it several times at different points
        proc = _child(killed, config, 0.01)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        time.sleep(0.3)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    proc = _child(killed, config, 0.0)
    assert proc.wait(60) == 0
    clean_values, clean_results = _snapshot(clean)
    killed_values, killed_results = _snapshot(killed)
    assert len(clean_values) > 20
    assert killed_values == clean_values
    assert killed_results == clean_results
