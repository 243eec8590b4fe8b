"""A harness for adapter tests: deliver messages through the real delivery worker to a fake, collect the results."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from traitsync.delivery.backoff import Backoff
from traitsync.delivery.limiter import RateLimiter
from traitsync.delivery.outbox import Outbox
from traitsync.delivery.target import DeliveryTarget
from traitsync.delivery.worker import DestinationWorker
from traitsync.destinations import get_destination
from traitsync.store import Database, migrate

FAST = Backoff(base=0.01, cap=0.05, max_attempts=5, give_up_after=3600.0, jitter=False)


@dataclass
class Delivered:
    """Outbox rows after a run: ``states`` by messageId, and every attempt's request log."""

    states: dict[str, str]
    codes: dict[str, str | None]
    attempts: list[tuple[str, int, str, str | None, str | None]]  # messageId, attempt, outcome, code, requests


class Harness:
    def __init__(self, db: Database) -> None:
        self.db = db

    def worker(self, kind: str, settings: dict[str, Any], *, destination_id: str | None = None,
               rate: float = 1000.0, batch_size: int | None = None, mappings: dict[str, Any] | None = None,
               **kw: Any) -> DestinationWorker:
        adapter = get_destination(kind)
        target = DeliveryTarget.simple(destination_id or f"dst_{kind}", adapter, adapter.parse_settings(settings),
                                       rate=rate, batch_size=batch_size, timeout_s=kw.pop("timeout_s", 2.0),
                                       mappings=mappings)
        return DestinationWorker(self.db, target, limiter=RateLimiter(rate), backoff=kw.pop("backoff", FAST),
                                 poll_interval=0.01, **kw)

    def enqueue(self, destination_id: str, messages: Sequence[dict[str, Any]], *,
                adapter_input: dict[str, Any] | None = None) -> None:
        outbox = Outbox(self.db)
        conn = self.db.connect()
        try:
            with conn.transaction():
                for m in messages:
                    key = str(m.get("userId") or m.get("anonymousId") or m["messageId"])
                    outbox.enqueue(conn, destination_id, key, m, computation_id="aud_1", adapter_input=adapter_input)
        finally:
            conn.close()

    def run(self, worker: DestinationWorker, messages: Sequence[dict[str, Any]], *, include_retries: bool = True,
            timeout: float = 20.0, adapter_input: dict[str, Any] | None = None) -> Delivered:
        self.enqueue(worker.destination_id, messages, adapter_input=adapter_input)
        worker.drain(timeout, include_retries=include_retries)
        worker.close()
        return self.result(worker.destination_id)

    def result(self, destination_id: str) -> Delivered:
        conn = self.db.connect()
        try:
            rows = conn.fetchall("SELECT message_id, state, last_error_code FROM delivery_outbox"
                                 " WHERE destination_id = ? ORDER BY id", (destination_id,))
            attempts = conn.fetchall(
                "SELECT o.message_id, a.attempt, a.outcome, a.code, a.requests FROM delivery_attempts a"
                " JOIN delivery_outbox o ON o.id = a.outbox_id WHERE o.destination_id = ? ORDER BY a.id",
                (destination_id,))
            conn.commit()
        finally:
            conn.close()
        return Delivered({r[0]: r[1] for r in rows}, {r[0]: r[2] for r in rows},
                         [(a[0], int(a[1]), a[2], a[3], a[4]) for a in attempts])


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    db = Database(f"sqlite:///{tmp_path / f'vendor-{uuid.uuid4().hex[:6]}.db'}")
    migrate(db)
    yield Harness(db)


PG_URL = os.environ.get("TRAITSYNC_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
