"""``traitsync demo``: the whole flow, in one process, on a fresh SQLite store, in under a minute.

The server (Tracking API, identity, the realtime engine, activation, delivery) runs in-process
under uvicorn on a free port; a local receiver plays two destinations: a webhook **event**
destination (identify + track) and a webhook **list** destination. We post a deterministic shop
history through ``/v1/batch``, then a few live "Product Viewed" events whose users enter a
10-second audience and visibly leave it, and print what each destination received, who entered
and exited, and each destination's Delivery Overview read from the management API.
"""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from traitsync.config import load_config_text
from traitsync.demo.receiver import DemoReceiver
from traitsync.demo.sample import live_views, shop_events
from traitsync.errors import TraitsyncError
from traitsync.server.app import create_app
from traitsync.server.assemble import Stages, assemble
from traitsync.server.project import resolve_project
from traitsync.store import Database

DEMO_DIR = Path(".traitsync/demo")
WRITE_KEY = "demo-write-key"
TOKEN = "demo-admin-token"
LIVE_USERS = 8
SHORT_AUDIENCE = "viewed_product_last_10s"
DEADLINE_S = 50.0


def demo_config(receiver_url: str) -> str:
    return f"""\
space_id: spa_demo
sources:
  - id: src_shop
    name: Demo shop
    write_key: {WRITE_KEY}
profile_api:
  access_secret: demo-profile-secret
management_api:
  token: {TOKEN}
computed_traits:
  - key: total_revenue_180_days
    kind: aggregation
    event: Order Completed
    property: revenue
    function: sum
    window: 180d
    where: [{{property: currency, op: equals, value: USD}}]
  - key: last_category_viewed
    kind: last
    event: Product Viewed
    property: category
audiences:
  - key: order_completed_last_30days
    name: Order Completed Last 30 Days
    condition:
      performed: {{event: Order Completed, at_least: 1, within: 30d}}
  - key: {SHORT_AUDIENCE}
    name: Viewed A Product In The Last 10 Seconds
    condition:
      performed: {{event: Product Viewed, at_least: 1, within: 10s}}
destinations:
  - id: dst_events
    name: Shop Webhook
    kind: webhook
    rate_limit: 500
    settings: {{url: "{receiver_url}/events"}}
    connections:
      - computation: total_revenue_180_days
        send: [identify]
      - computation: last_category_viewed
        send: [identify]
      - computation: order_completed_last_30days
        send: [identify, track]
      - computation: {SHORT_AUDIENCE}
        send: [track]
  - id: dst_lists
    name: Webhook Audiences
    kind: webhook
    settings: {{url: "{receiver_url}/lists"}}
    schedule: {{every: 1h}}
    connections:
      - computation: {SHORT_AUDIENCE}
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the demo's thread must not steal Ctrl-C
        pass


def _wait(what: str, predicate: Callable[[], bool], deadline: float) -> None:
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise TraitsyncError(f"demo: timed out waiting for {what}", code="demo_timeout")


def _outbox_idle(db: Database) -> bool:
    conn = db.connect()
    try:
        busy = conn.scalar("SELECT COUNT(*) FROM delivery_outbox WHERE terminal = ? OR (state = ? AND applied = ?)",
                           (False, "delivered", False))
        done = conn.scalar('SELECT COUNT(*) FROM checkpoints WHERE consumer = ?', ("activation.results",))
        head = conn.scalar('SELECT MAX("offset") FROM computation_results') or 0
        seen = conn.scalar('SELECT "offset" FROM checkpoints WHERE consumer = ?', ("activation.results",)) or 0
        conn.commit()
    finally:
        conn.close()
    return not busy and (done or not head) and int(seen) >= int(head)


def _audience_users(messages: list[dict[str, Any]], key: str) -> tuple[list[str], list[str]]:
    entered: list[str] = []
    exited: list[str] = []
    for m in messages:
        if m.get("type") == "track" and m.get("properties", {}).get("audience_key") == key and "userId" in m:
            (entered if m["properties"][key] else exited).append(m["userId"])
    return entered, exited


def run_demo(console: Console) -> None:
    from traitsync.logging import configure_logging

    configure_logging("warning")  # the demo prints its own story; worker chatter would bury it
    started = time.monotonic()
    deadline = started + DEADLINE_S
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    receiver = DemoReceiver().start()
    text = demo_config(receiver.url)
    (DEMO_DIR / "traitsync.yaml").write_text(text)
    loaded = load_config_text(text, file=str(DEMO_DIR / "traitsync.yaml"))
    db = Database(f"sqlite:///{DEMO_DIR / 'traitsync.db'}")
    runtime, routers, stages = assemble(resolve_project(loaded), db)
    app = create_app(runtime, extra_routers=routers)
    port = _free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    console.rule("[bold]traitsync demo")
    console.print(f"server on {base}, store {db.redacted_url()}, receiver on {receiver.url}")
    try:
        _run(console, base, db, stages, receiver, deadline)
    finally:
        server.should_exit = True
        thread.join(10)
        receiver.stop()
    console.print(f"[bold green]demo finished in {time.monotonic() - started:.1f}s[/]")


def _run(console: Console, base: str, db: Database, stages: Stages, receiver: DemoReceiver,
         deadline: float) -> None:
    now = int(time.time() * 1000)
    events = shop_events(now)
    with httpx.Client(base_url=base, auth=(WRITE_KEY, ""), timeout=10) as client:
        for i in range(0, len(events), 100):
            client.post("/v1/batch", json={"batch": events[i:i + 100]}).raise_for_status()
        console.print(f"sent {len(events)} shop events (page, identify with email, Product Viewed, "
                      "Order Completed over 200 days) to /v1/batch")
        _wait("the shop history to be activated", lambda: bool(receiver.messages("/events"))
              and _outbox_idle(db), deadline)
        live = live_views(int(time.time() * 1000), LIVE_USERS)
        client.post("/v1/batch", json={"batch": live}).raise_for_status()
        console.print(f"sent {len(live)} live 'Product Viewed' events: those users enter "
                      f"{SHORT_AUDIENCE} now and exit 10 s later")
    _wait("users to enter the 10-second audience",
          lambda: len(set(_audience_users(receiver.messages("/events"), SHORT_AUDIENCE)[0])) >= LIVE_USERS, deadline)
    entered_at = time.monotonic()
    _wait("the list destination's first upload", lambda: _outbox_idle(db), deadline)
    first = stages.lists.sync_now("dst_lists")
    _wait("the list upload", lambda: _outbox_idle(db), deadline)
    console.print(f"list sync now (as `traitsync destinations sync dst_lists`): "
                  f"{', '.join(f'{r.computation_key}: +{r.adds} -{r.removes}' for r in first)}")
    console.print("waiting for the 10-second window to pass...")
    _wait("users to exit the 10-second audience",
          lambda: len(set(_audience_users(receiver.messages("/events"), SHORT_AUDIENCE)[1])) >= LIVE_USERS, deadline)
    console.print(f"exits arrived {time.monotonic() - entered_at:.1f}s after the entries")
    second = stages.lists.sync_now("dst_lists")
    _wait("the list removals", lambda: _outbox_idle(db), deadline)
    console.print(f"list sync now: {', '.join(f'{r.computation_key}: +{r.adds} -{r.removes}' for r in second)}")
    _report(console, base, receiver)


def _report(console: Console, base: str, receiver: DemoReceiver) -> None:
    for path, title in (("/events", "dst_events (webhook, event destination)"),
                        ("/lists", "dst_lists (webhook, list destination)")):
        table = Table(title=f"{title}: received")
        table.add_column("message")
        table.add_column("count", justify="right")
        for name, count in sorted(receiver.counts(path).items()):
            table.add_row(name, str(count))
        console.print(table)
    events = receiver.messages("/events")
    sample_identify = next((m for m in events if m.get("type") == "identify"
                            and "total_revenue_180_days" in m.get("traits", {})), None)
    sample_track = next((m for m in events if m.get("type") == "track" and m.get("event") == "Audience Entered"), None)
    for label, sample in (("an identify for a computed trait", sample_identify),
                          ("a track for an audience entry", sample_track)):
        if sample is not None:
            console.print(f"[bold]{label}:[/]")
            console.print_json(json.dumps(sample))
    table = Table(title="Audiences: users entering and exiting (track events at dst_events)")
    table.add_column("audience", overflow="fold")
    for col in ("entered", "exited", "messages"):
        table.add_column(col, justify="right")
    exits: list[str] = []
    for key in ("order_completed_last_30days", SHORT_AUDIENCE):
        entered, exited = _audience_users(events, key)
        table.add_row(key, str(len(set(entered))), str(len(set(exited))), str(len(entered) + len(exited)))
        if exited:
            exits.append(f"{key}: " + ", ".join(sorted(set(exited))[:8]))
    console.print(table)
    console.print("users entered and exited (one message per identifier); who exited:", *exits, sep="\n  ")
    revenue: dict[str, Any] = {}
    for m in events:
        traits = m.get("traits", {})
        if m.get("type") == "identify" and "total_revenue_180_days" in traits and "email" not in traits:
            revenue[m["userId"]] = traits["total_revenue_180_days"]
    top = sorted(revenue.items(), key=lambda kv: -float(kv[1] or 0))[:3]
    console.print("computed trait total_revenue_180_days, top 3 as received: "
                  + ", ".join(f"{u} = {v}" for u, v in top))
    lists = receiver.messages("/lists")
    for m in lists:
        members = ", ".join(x["value"] for x in m.get("members", [])[:4])
        console.print(f"list {m['action']:<6} {m['audience']['key']} ({len(m.get('members', []))} members) {members}")
    table = Table(title="Delivery Overview (GET /api/v1/destinations/{id}/delivery-overview)")
    for col in ("destination", "successful", "pending", "pending retry", "failed", "filtered"):
        table.add_column(col, justify="right" if col != "destination" else "left")
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10) as client:
        for dest in ("dst_events", "dst_lists"):
            view = client.get(f"/api/v1/destinations/{dest}/delivery-overview").json()
            failed = sum(view["failed_delivery"].values())
            filtered = sum(view["filtered_at_destination"].values())
            table.add_row(dest, str(view["successful_delivery"]), str(view["pending"]), str(view["pending_retry"]),
                          str(failed), str(filtered))
    console.print(table)
