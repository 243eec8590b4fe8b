"""List destinations at scale: 1,000,000 members synced for the first time, then 1% churn.

For each vendor (Facebook Custom Audiences, Google Ads Customer Match) a fresh SQLite store gets
N audience members (one email each, written as the upstream stages write them: identifiers and
current values), and a validating fake of the vendor runs in its own process (so its memory
does not count). Then, through the real scheduler, outbox and delivery worker:

1. sync: the list is created alone (both vendors need the list id before members);
2. sync: every member is uploaded (Facebook: rows of 10,000; Google: one job per 100,000);
3. 1% churn (N/200 members leave, N/200 new ones join), sync: exactly N/100 member operations.

Reported per phase: wall time (plan = the scheduler's sync transaction; deliver = draining the
outbox to the fake; confirm = folding receipts into membership) and the process's peak RSS
(``VmHWM``; it only grows, so each figure is the peak so far) right after planning and at the
end of the phase (delivery holds up to ``concurrency`` operations, each up to a vendor batch).
The destination's rate cap is raised to 1,000 req/s so the vendor's cap (Facebook 10/s, Google 5/s) does not hide the
platform's own cost. Each vendor runs in a separate process.

Baselines, measured in the same run on the store it leaves behind, each in its own process (so
its peak RSS is its own): a bare SQL scan of every member's identifiers (the least any planner
must read), and the previous in-memory planner (every member, identifier and confirmed list row
loaded into Python and diffed there). ``ratios`` compares the scheduler with them.

    .venv/bin/python bench/lists.py --members 1000000
    .venv/bin/python bench/lists.py --members 100000 --vendor google
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIG = """\
space_id: spa_bench
sources:
  - id: src_web
    write_key: web-key
audiences:
  - key: big
    name: Big Audience
    condition:
      performed: {{event: Order Completed, at_least: 1}}
destinations:
{destination}"""


def peak_mb() -> float:
    """This process's peak RSS so far. ``VmHWM`` (Linux) belongs to the process's own memory map,
    whereas ``ru_maxrss`` is carried over ``exec`` from the parent, so a baseline started by a
    large process would report the parent's peak."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- fakes (run in their own process) ----------------------------------------------------------


def serve_fake(vendor: str) -> None:
    from tests.destinations.fakes.server import Answer, FakeVendor, Route, Seen

    counts: dict[str, int] = {"requests": 0}
    lock = threading.Lock()

    def bump(key: str, n: int) -> None:
        with lock:
            counts[key] = counts.get(key, 0) + n

    if vendor == "facebook":
        from tests.activation_flow.test_list_facebook import CREATE_SCHEMA, USERS_SCHEMA

        def create(_seen: Seen, _m: re.Match[str]) -> Answer:
            bump("lists", 1)
            return Answer(200, {"id": "23841"})

        def users(seen: Seen, m: re.Match[str]) -> Answer:
            rows = seen.json()["payload"]["data"]
            bump(f"{seen.method} rows", len(rows))
            return Answer(200, {"audience_id": m.group(1), "num_received": len(rows), "num_invalid_entries": 0})

        fake = FakeVendor([
            Route("POST", r"/v24\.0/act_1234/customaudiences", create, schema=CREATE_SCHEMA),
            Route("POST", r"/v24\.0/(\d+)/users", users, schema=USERS_SCHEMA),
            Route("DELETE", r"/v24\.0/(\d+)/users", users, schema=USERS_SCHEMA),
        ])
        base = fake.url + "/v24.0"
    else:
        from tests.destinations.fakes.google_ads import google_ads_fake

        google = google_ads_fake()
        fake = google.fake
        base = google.api
        original = fake._answer

        def counting(seen: Seen) -> Answer:
            answer = original(seen)
            if seen.path.endswith(":addOperations") and answer.status == 200:
                for op in seen.json()["operations"]:
                    bump(f"{next(iter(op))} operations", 1)
            return answer

        fake._answer = counting  # type: ignore[method-assign]

    def stats(_seen: Seen, _m: re.Match[str]) -> Answer:
        with lock:
            body = {**counts, "requests": len(fake.requests), "violations": fake.violations[:5]}
        return Answer(200, body)

    fake.routes.insert(0, Route("GET", r"/_stats", stats))
    if vendor == "facebook":
        fake.start()
    print(json.dumps({"url": fake.url, "base": base}), flush=True)
    sys.stdin.read()  # until the parent closes our stdin


# -- baselines (each in its own process, so its peak RSS is its own) ----------------------------


def baseline(kind: str, database_url: str) -> dict[str, Any]:
    """Time and peak RSS of reading the same audience another way, on the store a run left behind.

    ``scan``: a bare SQL scan of every member's identifiers, rows fetched and dropped in chunks
    (the least any planner must read). ``memory``: the previous planner, which loaded every member,
    its identifiers and the list's confirmed membership into Python and diffed them there
    (``diff.plan_list_sync``); messages are not built, so it is a lower bound of that planner.
    """
    from traitsync.activation.diff import plan_list_sync
    from traitsync.activation.ids import select_identifiers
    from traitsync.activation.profiles import load_identifiers
    from traitsync.activation.types import Identifier
    from traitsync.store import Database

    db = Database(database_url)
    conn = db.connect()
    rss0 = peak_mb()
    t0 = time.perf_counter()
    out: dict[str, Any] = {"baseline": kind}
    with conn.transaction():
        if kind == "scan":
            rows = 0
            for chunk in conn.stream(
                    "SELECT e.profile_id, e.id_type, e.value FROM computed_values v JOIN profile_external_ids e"
                    " ON e.profile_id = v.profile_id AND e.collection = 'users' WHERE v.computation_key = ?"
                    " AND v.value = 'true'", ("big",), size=10_000):
                rows += len(chunk)
            out["rows"] = rows
        else:
            values = conn.fetchall("SELECT profile_id, value FROM computed_values WHERE computation_key = ?", ("big",))
            profiles = [str(p) for p, v in values if v is not None and json.loads(v) is True]
            identifiers = load_identifiers(conn, profiles)
            members = {p: sel for p in profiles if (sel := select_identifiers(identifiers.get(p, [])))}
            held: dict[str, set[Identifier]] = {}
            for pid, t, v in conn.fetchall("SELECT profile_id, id_type, id_value FROM activation_list_members"):
                held.setdefault(str(pid), set()).add(Identifier(str(t), str(v)))
            diff = plan_list_sync({p: frozenset(i) for p, i in held.items()}, members)
            out["rows"] = len(members)
            out["diff"] = len(diff.adds) + len(diff.removes)
    out["seconds"] = round(time.perf_counter() - t0, 2)
    out["peak_rss_mb"] = round(peak_mb())
    out["rss_before_mb"] = round(rss0)
    conn.close()
    return out


# -- one vendor's run --------------------------------------------------------------------------


def destination_yaml(vendor: str, fake: dict[str, str]) -> str:
    if vendor == "facebook":
        settings = f'{{access_token: "EAAB-system-user-token-123", ad_account_id: "1234", endpoint: "{fake["base"]}"}}'
        kind = "facebook_custom_audiences"
    else:
        from tests.destinations.fakes import google_ads as g

        settings = (f'{{customer_id: "123-456-7890", developer_token: "{g.DEVELOPER_TOKEN}",'
                    f' client_id: "{g.CLIENT_ID}", client_secret: "{g.CLIENT_SECRET}",'
                    f' refresh_token: "{g.REFRESH_TOKEN}",'
                    f' token_url: "{fake["url"]}/oauth2/token", endpoint: "{fake["base"]}",'
                    ' job_poll_initial_s: 0.05}')
        kind = "google_ads_customer_match"
    return (f"  - id: dst\n    kind: {kind}\n    settings: {settings}\n    rate_limit: 1000\n"
            f"    connections:\n      - computation: big\n")


def load_members(db: Any, start: int, count: int) -> None:
    conn = db.connect()
    with conn.transaction():
        step = 50_000
        for lo in range(start, start + count, step):
            hi = min(lo + step, start + count)
            conn.executemany(
                "INSERT INTO profile_external_ids (id_type, value, collection, profile_id, source_id, created_at_ms,"
                " first_message_id, event_offset) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [("email", f"user{i}@example.com", "users", f"p{i}", "src_web", 1_700_000_000_000 + i, f"m{i}", i)
                 for i in range(lo, hi)])
            conn.executemany(
                "INSERT INTO computed_values (profile_id, computation_key, value, version, updated_at_ms)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (profile_id, computation_key)"
                " DO UPDATE SET value = excluded.value",
                [(f"p{i}", "big", "true", 1, 1_700_000_000_000) for i in range(lo, hi)])
    conn.close()


def leave(db: Any, ids: range) -> None:
    conn = db.connect()
    with conn.transaction():
        conn.executemany("UPDATE computed_values SET value = ? WHERE profile_id = ? AND computation_key = ?",
                         [("false", f"p{i}", "big") for i in ids])
    conn.close()


def run_vendor(vendor: str, members: int, database_url: str | None, trace: bool = False) -> dict[str, Any]:
    import httpx

    from traitsync.config import load_config_text
    from traitsync.server.assemble import build_stages
    from traitsync.server.project import resolve_project
    from traitsync.store import Database
    from traitsync.store.migrate import migrate

    proc = subprocess.Popen([sys.executable, __file__, "fake", "--vendor", vendor], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    fake = json.loads(proc.stdout.readline())
    tmp = tempfile.mkdtemp(prefix="bench-lists-")
    db = Database(database_url or f"sqlite:///{tmp}/traitsync.db")
    migrate(db)
    text = CONFIG.format(destination=destination_yaml(vendor, fake))
    project = resolve_project(load_config_text(text, file=f"{tmp}/traitsync.yaml"))
    stages = build_stages(project, db, delivery_poll=0.01, shared_limits=False)
    worker = stages.delivery["dst"]
    out: dict[str, Any] = {"vendor": vendor, "members": members, "rss_start_mb": round(peak_mb())}
    t = time.perf_counter()
    load_members(db, 0, members)
    out["load_s"] = round(time.perf_counter() - t, 1)
    out["rss_after_load_mb"] = round(peak_mb())

    snapshots: list[tracemalloc.Snapshot] = []
    if trace:  # snapshot at the first enqueue of a sync: every planned structure is alive then
        enqueue = stages.lists.outbox.enqueue

        def spying(*args: Any, **kwargs: Any) -> Any:
            if tracemalloc.is_tracing() and not snapshots:
                snapshots.append(tracemalloc.take_snapshot())
            return enqueue(*args, **kwargs)

        stages.lists.outbox.enqueue = spying  # type: ignore[method-assign]

    def sync(label: str) -> None:
        snapshots.clear()
        if trace:
            tracemalloc.start()
        t0 = time.perf_counter()
        results = stages.lists.sync_now("dst")
        t1 = time.perf_counter()
        rss_plan = peak_mb()
        if trace:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            top = snapshots[0].statistics("lineno")[:8] if snapshots else []
            out[f"{label}_plan_traced"] = {"peak_mb": round(peak / 2**20), "at_first_enqueue": [
                f"{s.traceback[0].filename.rsplit('/src/', 1)[-1]}:{s.traceback[0].lineno} {s.size / 2**20:.0f} MB"
                for s in top]}
            t1 = time.perf_counter()
        settled = worker.drain(timeout=3600, include_retries=True)
        t2 = time.perf_counter()
        stages.activation.apply_confirmations()
        t3 = time.perf_counter()
        out[label] = {"plan_s": round(t1 - t0, 1), "deliver_s": round(t2 - t1, 1), "confirm_s": round(t3 - t2, 1),
                      "total_s": round(t3 - t0, 1), "operations": sum(r.messages for r in results),
                      "settled": settled, "peak_rss_after_plan_mb": round(rss_plan),
                      "peak_rss_mb": round(peak_mb())}

    sync("create")
    sync("first_upload")
    before = httpx.get(f"{fake['url']}/_stats").json()
    churn = members // 200
    leave(db, range(0, churn))
    load_members(db, members, churn)
    sync("churn_1pct")
    after = httpx.get(f"{fake['url']}/_stats").json()
    sent = {k: after[k] - before.get(k, 0) for k in after if k not in ("requests", "violations")}
    out["churn_member_operations"] = sent
    out["churn_member_operations_total"] = sum(v for k, v in sent.items() if k != "lists")
    out["first_upload_member_operations"] = {k: v for k, v in before.items() if k not in ("requests", "violations")}
    out["requests"] = after["requests"]
    out["violations"] = after["violations"]
    conn = db.connect()
    out["dead"] = conn.fetchone("SELECT COUNT(*) FROM delivery_outbox WHERE state = 'dead'")[0]
    out["members_held"] = conn.fetchone("SELECT COUNT(*) FROM activation_list_members")[0]
    conn.close()
    out["churn_exact"] = out["churn_member_operations_total"] == members // 100
    # Baselines on the same store, measured now (same machine load), each in its own process.
    for kind in ("scan", "memory"):
        done = subprocess.run([sys.executable, __file__, "baseline", "--kind", kind, "--database-url", db.url],
                              capture_output=True, text=True, cwd=ROOT, check=True)
        out[f"baseline_{kind}"] = json.loads(done.stdout.strip().splitlines()[-1])
    if database_url is None:
        shutil.rmtree(tmp, ignore_errors=True)
    scan, memory = out["baseline_scan"], out["baseline_memory"]
    out["ratios"] = {
        "churn_plan_s / bare_scan_s": round(out["churn_1pct"]["plan_s"] / max(scan["seconds"], 0.01), 2),
        "churn_plan_s / in_memory_plan_s": round(out["churn_1pct"]["plan_s"] / max(memory["seconds"], 0.01), 2),
        "first_upload_plan_s / bare_scan_s": round(out["first_upload"]["plan_s"] / max(scan["seconds"], 0.01), 2),
        # After the first upload's plan, before any delivery: the process peak then is the
        # scheduler's (and the load's); later figures include what delivery held in flight.
        "first_upload_plan_peak_rss_mb / in_memory_plan_peak_rss_mb": round(
            out["first_upload"]["peak_rss_after_plan_mb"] / max(memory["peak_rss_mb"], 1), 2),
    }
    for w in stages.delivery.values():
        w.close()
    stages.activation.close()
    assert proc.stdin is not None
    proc.stdin.close()
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:  # a fake holding a million requests can be slow to exit
        proc.kill()
        proc.wait()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", nargs="?", default="all", choices=["all", "run", "fake", "baseline"])
    parser.add_argument("--kind", default="scan", choices=["scan", "memory"], help="baseline mode: which one")
    parser.add_argument("--vendor", default="both", choices=["both", "facebook", "google"])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--database-url")
    parser.add_argument("--trace", action="store_true", help="tracemalloc the scheduler's sync (slow; use 100k)")
    args = parser.parse_args()
    if args.mode == "fake":
        serve_fake(args.vendor)
        return
    if args.mode == "baseline":
        print(json.dumps(baseline(args.kind, args.database_url)), flush=True)
        return
    if args.mode == "run":
        print(json.dumps(run_vendor(args.vendor, args.members, args.database_url, args.trace)), flush=True)
        return
    for vendor in (["facebook", "google"] if args.vendor == "both" else [args.vendor]):
        cmd = [sys.executable, __file__, "run", "--vendor", vendor, "--members", str(args.members)]
        if args.database_url:
            cmd += ["--database-url", args.database_url]
        if args.trace:
            cmd.append("--trace")
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, check=False)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            raise SystemExit(done.returncode)
        print(json.dumps(json.loads(done.stdout.strip().splitlines()[-1]), indent=2), flush=True)


if __name__ == "__main__":
    main()
