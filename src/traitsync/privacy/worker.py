"""The privacy worker: carries deletions out, step by step (``erase.py``)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import structlog

from traitsync.privacy import erase
from traitsync.privacy.regulations import EXITING, PENDING, open_regulations
from traitsync.store.database import Database

log = structlog.get_logger("traitsync.privacy")


class PrivacyWorker:
    """``send_exits``: tell connected destinations a deleted profile left its audiences.
    ``activation_runs``: an activation worker reads computation results (else exits are not awaited)."""

    name = "privacy"

    def __init__(self, db: Database, *, send_exits: bool = True, activation_runs: bool = True,
                 poll_interval: float = 0.2, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.send_exits = send_exits
        self.activation_runs = activation_runs
        self.poll_interval = poll_interval
        self.clock = clock

    def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            if self.run_once() == 0:
                stop.wait(self.poll_interval)

    def run_once(self) -> int:
        """One step of each open deletion (at most 10); returns how many moved on (0: idle)."""
        conn = self.db.connect()
        done = 0
        try:
            for reg, pids_json, exit_offset in open_regulations(conn):
                now = int(self.clock() * 1000)
                with conn.transaction():
                    if reg.status == PENDING:
                        detail = erase.begin(conn, reg, send_exits=self.send_exits, now_ms=now)
                        log.info("deletion started", regulation=reg.id, detail=detail)
                        done += 1
                    elif reg.status == EXITING:
                        pids = json.loads(pids_json or "[]")
                        if erase.ready(conn, pids, exit_offset or 0, activation_runs=self.activation_runs):
                            events = erase.finish(conn, reg, pids, send_exits=self.send_exits, now_ms=now)
                            log.info("deletion done", regulation=reg.id, events_deleted=events)
                            done += 1
            return done
        finally:
            conn.close()
