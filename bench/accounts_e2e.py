"""Account audiences in real time: from a user's event to the account's ``group`` call.

``traitsync serve`` (subprocess, real socket, the default layout) holds ACCOUNTS accounts of
USERS users each, built by ``group`` calls through ``/v1/batch``, with five account audiences
of mixed kinds connected to one webhook with ``send: [group]``. Once everything is computed and
delivered, FLIPS accounts (none of which has an order yet) get, one at a time at RATE per
second, an ``Order Completed`` from one of their users, which puts the account into
``acct_buyers``. Reported: the time from sending that event to the receiver getting the
account's ``group`` call with ``acct_buyers: true`` (p50 / p99 / max), and, as the baseline
of the same run, the same measurement for a user-level audience (``buyer``) fed by the same
events through the same pipeline.

    .venv/bin/python bench/accounts_e2e.py --accounts 10000 --users 100 --flips 200
    .venv/bin/python bench/accounts_e2e.py --accounts 1000 --users 100 --flips 200 [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.e2e import Recorder, free_port, iso, pct

AUDIENCES = """\
  - key: buyer
    condition: {performed: {event: Order Completed}}
  - key: acct_buyers
    level: account
    query: "event('Order Completed').count() >= 1"
  - key: acct_pro
    level: account
    query: "trait('plan') = 'pro'"
  - key: acct_engaged
    level: account
    query: "ANY event('Page Viewed').within(1 hour).count() >= 3"
  - key: acct_big_pro
    level: account
    query: "trait('plan') = 'pro' AND trait('employees') > 500"
  - key: acct_all_verified
    level: account
    query: "ALL trait('verified') = true"
"""
ACCOUNT_KEYS = ["acct_buyers", "acct_pro", "acct_engaged", "acct_big_pro", "acct_all_verified"]


def config(receiver_url: str) -> str:
    conns = "".join(f"      - computation: {k}\n        send: [group]\n" for k in ACCOUNT_KEYS)
    conns += "      - computation: buyer\n        send: [identify]\n"
    return (f"space_id: spa_bench\nsources:\n  - id: src\n    write_key: wk\nmanagement_api:\n  token: t\n"
            f"accounts:\n  membership: many\naudiences:\n{AUDIENCES}destinations:\n  - id: dst\n"
            f"    kind: webhook\n    rate_limit: 1000\n"
            f"    settings: {{url: \"{receiver_url}/hook\", batch_size: 200}}\n"
            f"    connections:\n{conns}")


def group_calls(accounts: int, users: int, now: float) -> list[dict[str, Any]]:
    rng = random.Random(7)
    out: list[dict[str, Any]] = []
    for a in range(accounts):
        traits = {"name": f"Account {a}", "plan": "pro" if a % 3 == 0 else "free",
                  "employees": rng.randint(1, 1000)}
        for u in range(users):
            out.append({"type": "group", "userId": f"u{a:05d}_{u:03d}", "groupId": f"g{a:05d}",
                        "traits": traits if u == 0 else {}, "timestamp": iso(now),
                        "messageId": f"grp-{a}-{u}"})
    return out


def _idle(db_url: str, timeout: float) -> float:
    """Until identity, the engine and activation have caught up and the outbox is empty."""
    from traitsync.store.database import Database
    db = Database(db_url)
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        conn = db.connect()
        try:
            head = int(conn.scalar('SELECT MAX("offset") FROM events') or 0)
            cps = dict(conn.fetchall("SELECT consumer, \"offset\" FROM checkpoints"))
            results = int(conn.scalar('SELECT MAX("offset") FROM computation_results') or 0)
            open_rows = int(conn.scalar("SELECT COUNT(*) FROM delivery_outbox WHERE terminal = ?", (False,)))
            conn.commit()
        except Exception:  # tables not there yet
            cps, head, results, open_rows = {}, 1, 0, 1
        finally:
            conn.close()
        if (head and int(cps.get("identity", 0)) >= head and int(cps.get("realtime", 0)) >= head
                and int(cps.get("activation.results", 0)) >= results and open_rows == 0):
            return time.monotonic() - t0
        time.sleep(0.5)
    raise SystemExit(f"the pipeline did not catch up within {timeout:.0f} s")


def run(accounts: int, users: int, flips: int, rate: float, database_url: str | None) -> dict[str, Any]:
    rec = Recorder()
    tmp = Path(tempfile.mkdtemp(prefix="traitsync-accounts-e2e-"))
    (tmp / "traitsync.yaml").write_text(config(rec.url))
    url = database_url or f"sqlite:///{tmp / 'traitsync.db'}"
    port = free_port()
    log = (tmp / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "traitsync.cli", "serve", "-c", str(tmp / "traitsync.yaml"),
                             "--database-url", url, "--port", str(port), "--log-level", "warning"],
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        client = httpx.Client(base_url=base, auth=("wk", ""), timeout=60)
        now = time.time()
        calls = group_calls(accounts, users, now)
        t0 = time.perf_counter()
        for start in range(0, len(calls), 500):
            client.post("/v1/batch", json={"batch": calls[start:start + 500]}).raise_for_status()
        sent_s = time.perf_counter() - t0
        setup_s = _idle(url, timeout=7200) + sent_s
        received_before = len(rec.messages())
        rng = random.Random(11)
        targets = rng.sample(range(accounts), min(flips, accounts))
        sent_at: dict[str, float] = {}
        user_of: dict[str, str] = {}
        flips_start = time.time()
        for i, a in enumerate(targets):
            user = f"u{a:05d}_{rng.randrange(users):03d}"
            at = time.time()
            client.post("/v1/batch", json={"batch": [
                {"type": "track", "userId": user, "event": "Order Completed", "timestamp": iso(at),
                 "properties": {"revenue": 10}, "messageId": f"flip-{i}"}]}).raise_for_status()
            sent_at[f"g{a:05d}"] = at
            user_of[user] = f"g{a:05d}"
            time.sleep(max(0.0, flips_start + (i + 1) / rate - time.time()))
        deadline = time.time() + 60
        while time.time() < deadline:
            got = {m.get("groupId") for _, m in rec.messages()[received_before:]
                   if m.get("type") == "group" and m.get("traits", {}).get("acct_buyers") is True}
            if set(sent_at) <= got:
                break
            time.sleep(0.5)
    finally:
        proc.terminate()
        proc.wait(60)
    account_lat: dict[str, float] = {}
    user_lat: dict[str, float] = {}
    for at, m in rec.messages()[received_before:]:
        if m.get("type") == "group" and m.get("traits", {}).get("acct_buyers") is True:
            g = m.get("groupId")
            if g in sent_at:
                account_lat.setdefault(g, at - sent_at[g])
        if m.get("type") == "identify" and m.get("traits", {}).get("buyer") is True:
            uid = m.get("userId")
            if uid in user_of:
                user_lat.setdefault(uid, at - sent_at[user_of[uid]])
    a_lat, u_lat = list(account_lat.values()), list(user_lat.values())
    return {
        "benchmark": "accounts_e2e", "store": url.split(":")[0], "accounts": accounts,
        "users_per_account": users, "group_calls": len(calls),
        "setup_seconds (group calls in, computed and delivered)": round(setup_s, 1),
        "flips_sent": len(sent_at), "account_groups_received": len(a_lat),
        "account_flip_to_group_call_s": {"p50": round(pct(a_lat, 50), 3), "p99": round(pct(a_lat, 99), 3),
                                         "max": round(max(a_lat or [0]), 3)},
        "baseline_user_flip_to_identify_s": {"p50": round(pct(u_lat, 50), 3), "p99": round(pct(u_lat, 99), 3),
                                             "max": round(max(u_lat or [0]), 3), "received": len(u_lat)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--users", type=int, default=100, help="users per account")
    parser.add_argument("--flips", type=int, default=200)
    parser.add_argument("--rate", type=float, default=10.0, help="flip events per second")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(json.dumps(run(args.accounts, args.users, args.flips, args.rate, args.database_url), indent=2))


if __name__ == "__main__":
    main()
