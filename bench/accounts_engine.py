"""Account-level audiences in the realtime engine: load, and the latency of a flip.

Load: A accounts x U users (each user one ``group`` call and a few events), 5 account
audiences and 2 user audiences, through identity and the realtime engine on SQLite; prints the
rate of the load (links included) in messages/s.
Flips: F single user events, each from a user of an account that is not yet in the audience
"some user ordered today" and so moves the account in; each is appended to the log and then
identity and the engine run until the account's result is written. Prints p50 / p99 / max of
that time (log append -> account result), which is the engine's share of "a user event that
flips an account's membership reaches the destination".

    .venv/bin/python bench/accounts_engine.py                                  # 200 accounts x 100 users
    .venv/bin/python bench/accounts_engine.py --accounts 10000 --users 100     # the target size (slow)
"""

from __future__ import annotations

import argparse
import random
import tempfile
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

DAY = 86_400_000
DEFINITIONS = """
audiences:
  - key: power_user
    query: "event('Login').within(30 days).count() >= 5"
  - key: churned
    query: "event('Login').within(30 days).count() = 0"
  - key: ordered_today
    level: account
    query: "ANY event('Order').within(1 days).count() >= 1"
  - key: busy_account
    level: account
    query: "event('Order').within(7 days).count() >= 20"
  - key: pro_with_power_users
    level: account
    query: "trait('plan') = 'pro' AND ANY audience('power_user')"
  - key: everyone_logs_in
    level: account
    query: "ALL event('Login').within(30 days).count() >= 1"
  - key: nobody_churned
    level: account
    query: "NONE audience('churned')"
"""


def load_messages(accounts: int, users: int, now: int, seed: int = 1) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    out: list[dict[str, Any]] = []
    n = 0
    for a in range(accounts):
        for u in range(users):
            uid = f"u{a}_{u}"
            out.append({"type": "group", "userId": uid, "groupId": f"g{a}", "messageId": f"m{n}",
                        "timestamp": format_iso_ms(now - 40 * DAY), "traits": {"plan": rnd.choice(["pro", "free"])}})
            n += 1
            for _ in range(rnd.randrange(4)):
                name = rnd.choice(["Login", "Login", "Order"])
                t = now - DAY - rnd.randrange(20 * DAY)  # nothing today: every account can flip
                out.append({"type": "track", "userId": uid, "event": name, "messageId": f"m{n}",
                            "timestamp": format_iso_ms(t), "properties": {"total": rnd.randrange(100)}})
                n += 1
    return out


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(tmp: Path, accounts: int, users: int, flips: int) -> None:
    db = Database(f"sqlite:///{tmp / 'accounts.db'}")
    now = int(time.time() * 1000)
    msgs = load_messages(accounts, users, now)
    log = EventLog(db)
    for start in range(0, len(msgs), 5000):
        log.append_messages("src_bench", msgs[start:start + 5000], received_at_ms=now)
    identity = IdentityWorker(db, default_identity_config(), chunk_size=5000)
    engine = RealtimeEngine(db, load_definitions(load_yaml_text(DEFINITIONS)), chunk_size=5000,
                            cache_profiles=max(50_000, accounts * (users + 1)))
    engine.prepare()
    t0, c0 = time.perf_counter(), time.process_time()
    while identity.run_once() > 0:
        pass
    while engine.run_once() > 0:
        pass
    load_wall, load_cpu = time.perf_counter() - t0, time.process_time() - c0
    conn = db.connect()
    members = int(conn.scalar("SELECT COUNT(*) FROM computed_values WHERE computation_key = 'ordered_today' "
                              "AND value = 'true'") or 0)
    conn.close()
    assert members == 0, "the load puts no account in ordered_today"
    rnd = random.Random(2)
    latencies: list[float] = []
    for i, a in enumerate(rnd.sample(range(accounts), min(flips, accounts))):
        uid = f"u{a}_{rnd.randrange(users)}"
        t0 = time.perf_counter()
        log.append_messages("src_bench", [{"type": "track", "userId": uid, "event": "Order", "messageId": f"f{i}",
                                           "timestamp": format_iso_ms(now), "properties": {"total": 1}}],
                            received_at_ms=now)
        while identity.run_once() > 0:
            pass
        while engine.run_once() > 0:
            pass
        latencies.append(time.perf_counter() - t0)
    conn = db.connect()
    flipped = int(conn.scalar("SELECT COUNT(*) FROM computed_values WHERE computation_key = 'ordered_today' "
                              "AND value = 'true'") or 0)
    conn.close()
    assert flipped == len(latencies), (flipped, len(latencies))
    print(f"\n### Accounts: {accounts:,} accounts x {users} users, 5 account audiences, SQLite\n")
    print("| measure | value |")
    print("|---|---:|")
    print(f"| load: messages (group + track) | {len(msgs):,} |")
    print(f"| load: messages/s (wall / CPU) | {len(msgs) / load_wall:,.0f} / {len(msgs) / load_cpu:,.0f} |")
    print(f"| flips measured | {len(latencies)} |")
    print(f"| flip latency p50 / p99 / max (ms) | {_pct(latencies, 0.5) * 1000:.1f} / "
          f"{_pct(latencies, 0.99) * 1000:.1f} / {max(latencies) * 1000:.1f} |")
    identity.close()
    engine.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=200)
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--flips", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(Path(tmp), args.accounts, args.users, args.flips)


if __name__ == "__main__":
    main()
