"""Run traitsync in-process on a fresh SQLite file, feed it the sample, show what happened."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from traitsync.config import load_config_text
from traitsync.demo.sample import shop_events
from traitsync.server.app import create_app
from traitsync.server.assemble import assemble
from traitsync.store import Database

DEMO_DIR = Path(".traitsync/demo")
WRITE_KEY = "demo-write-key"
DEMO_CONFIG = f"""
space_id: spa_demo
sources:
  - id: src_shop
    name: Demo shop
    write_key: {WRITE_KEY}
profile_api:
  access_secret: demo-profile-secret
management_api:
  token: demo-admin-token
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the demo's thread must not steal Ctrl-C
        pass


def run_demo(console: Console) -> None:
    started = time.monotonic()
    if DEMO_DIR.exists():
        shutil.rmtree(DEMO_DIR)
    DEMO_DIR.mkdir(parents=True)
    (DEMO_DIR / "traitsync.yaml").write_text(DEMO_CONFIG)
    loaded = load_config_text(DEMO_CONFIG, file=str(DEMO_DIR / "traitsync.yaml"))
    db = Database(f"sqlite:///{DEMO_DIR / 'traitsync.db'}")
    runtime, routers = assemble(loaded, db)
    app = create_app(runtime, extra_routers=routers)
    port = _free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.02)
    base = f"http://127.0.0.1:{port}"
    console.rule("[bold]traitsync demo")
    console.print(f"server on {base}, store {db.redacted_url()}")
    events = shop_events(int(time.time() * 1000))
    with httpx.Client(base_url=base, auth=(WRITE_KEY, ""), timeout=10) as client:
        for i in range(0, len(events), 100):
            response = client.post("/v1/batch", json={"batch": events[i:i + 100]})
            response.raise_for_status()
        # One bad message and one duplicate, to show they are named and not stored twice.
        bad = client.post("/v1/track", json={"userId": "user_000", "event": ""}).json()
        dup = client.post("/v1/batch", json={"batch": events[:5]}).json()
    debugger = httpx.get(f"{base}/api/v1/sources/src_shop/debugger", params={"limit": 3},
                         headers={"Authorization": "Bearer demo-admin-token"}, timeout=10).json()
    table = Table(title=f"Sent {len(events)} sample events; stored in the log")
    table.add_column("type")
    table.add_column("stored", justify="right")
    counts = Counter(e.type for e in runtime.event_log.read(0, 100_000))
    for kind, count in sorted(counts.items()):
        table.add_row(kind, str(count))
    console.print(table)
    console.print(f"invalid track call answered: {bad}")
    console.print(f"re-sent 5 events: {dup['duplicates']} recognised as duplicates, {dup['accepted']} stored again")
    console.print("source debugger, last events:")
    for event in debugger["events"]:
        console.print(f"  #{event['offset']} {event['type']} {event['event'] or ''} {event['messageId']}")
    server.should_exit = True
    thread.join(10)
    console.print(f"[bold green]demo finished in {time.monotonic() - started:.1f}s[/]")
