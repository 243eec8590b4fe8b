"""One worker per destination: claim due outbox rows, rate-limit, send, classify, settle.

The loop is deliberately dull: every decision it makes comes from a pure piece (adapter
``build``/``classify``, ``classify_status``, ``Backoff``, ``RateLimiter``) so each is tested
alone, and this module only sequences them and records the result of every attempt in the
same transaction that moves the row (and runs the ``on_delivered`` hook, so activation's
snapshot moves forward exactly when delivery confirms).

Shutdown: ``stop()`` stops claiming, lets the request on the wire finish and be recorded, and
gives claimed-but-unsent rows back untouched, so nothing is left in flight; ``drain()``
delivers everything currently due first.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from traitsync.delivery.backoff import Backoff
from traitsync.delivery.limiter import RateLimiter
from traitsync.delivery.outbox import DEAD, DELIVERED, RETRY_WAIT, Outbox, OutboxRow
from traitsync.delivery.transport import HttpTransport, Transport, TransportError
from traitsync.destinations.base import Destination, DestinationSettings, Outcome, Request
from traitsync.destinations.registry import default_rate
from traitsync.errors import InvalidPayload
from traitsync.store.database import Connection, Database, OwnedConnection

OnDelivered = Callable[[Connection, OutboxRow, Outcome], None]
UNSUPPORTED = "UNSUPPORTED_EVENT_TYPE"


class DestinationWorker(OwnedConnection):
    """Deliver one destination's outbox rows (one thread; several processes on PostgreSQL)."""

    def __init__(self, db: Database, destination_id: str, adapter: Destination[Any],
                 settings: DestinationSettings, *, limiter: RateLimiter | None = None,
                 backoff: Backoff | None = None, transport: Transport | None = None,
                 batch_size: int | None = None, timeout: float | None = None, lease_s: float = 120.0,
                 auth_pause_s: float = 300.0, poll_interval: float = 0.5,
                 on_delivered: OnDelivered | None = None, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.db = db
        self.destination_id = destination_id
        self.adapter = adapter
        self.settings = settings
        self.limiter = limiter or RateLimiter(default_rate(adapter))
        self.backoff = backoff or Backoff()
        self.transport: Transport = transport or HttpTransport()
        self.batch_size = batch_size or adapter.max_batch
        self.timeout = timeout if timeout is not None else adapter.timeout_s
        self.lease_ms = int(lease_s * 1000)
        self.auth_pause_s = auth_pause_s
        self.poll_interval = poll_interval
        self.on_delivered = on_delivered
        self.clock = clock
        self.rng = rng or random.Random()
        self.outbox = Outbox(db, clock=self._now_ms)
        self.paused_until = 0.0
        self.last_pause_code: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._conn: Connection | None = None

    # -- time and connection -------------------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @property
    def conn(self) -> Connection:
        return self.connection()

    @property
    def paused(self) -> bool:
        return self.clock() < self.paused_until

    def resume(self) -> None:
        """Lift an auth pause (after the user fixed the credentials)."""
        self.paused_until = 0.0

    # -- one round -----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Claim one batch of due rows and settle every one of them; returns how many were settled."""
        if self.paused or self._stop.is_set():
            return 0
        rows = self.outbox.claim(self.conn, self.destination_id, self.batch_size, lease_ms=self.lease_ms)
        if not rows:
            return 0
        settled = 0
        supported: list[OutboxRow] = []
        with self.conn.transaction():
            for row in rows:
                if self.adapter.supports(row.message):
                    supported.append(row)
                else:
                    self.outbox.filter(self.conn, row, UNSUPPORTED, at_ms=self._now_ms())
                    settled += 1
        requests, invalid = self._build(supported)
        if invalid:
            with self.conn.transaction():
                for row, code, text in invalid:
                    self._settle(row, Outcome.drop(code), http_status=None, duration_ms=0, detail=text)
            settled += len(invalid)
        pending = list(requests)
        while pending:
            request, batch = pending.pop(0)
            if self._stop.is_set() or self.paused or not self._wait_for_slot():
                pending.insert(0, (request, batch))
                break
            settled += self._send(request, batch)
        if pending:
            self.outbox.release(self.conn, [row.id for _, batch in pending for row in batch])
        return settled

    def _build(self, rows: Sequence[OutboxRow]) -> tuple[list[tuple[Request, list[OutboxRow]]],
                                                         list[tuple[OutboxRow, str, str]]]:
        """Requests with their rows; if the batch will not build, isolate the bad messages."""
        try:
            built = self.adapter.build([r.message for r in rows], self.settings)
            return [(req, [rows[i] for i in req.indices]) for req in built], []
        except InvalidPayload:
            pass
        requests: list[tuple[Request, list[OutboxRow]]] = []
        invalid: list[tuple[OutboxRow, str, str]] = []
        for row in rows:
            try:
                requests.extend((req, [row]) for req in self.adapter.build([row.message], self.settings))
            except InvalidPayload as exc:
                invalid.append((row, exc.code.upper(), exc.message))
        return requests, invalid

    def _wait_for_slot(self) -> bool:
        wait = self.limiter.acquire(1)
        if wait > 0:
            return not self._stop.wait(wait)
        return True

    def _send(self, request: Request, rows: list[OutboxRow]) -> int:
        started = time.monotonic()
        http_status: int | None = None
        detail: str | None = None
        try:
            response = self.transport.send(request, request.timeout or self.timeout)
        except TransportError as exc:
            outcome = Outcome.auth(exc.code) if exc.settings else Outcome.retry(code=exc.code)
            outcomes = [outcome] * len(rows)
            detail = exc.message
        else:
            http_status = response.status
            outcomes = self.adapter.classify(response, [r.message for r in rows])
            if len(outcomes) != len(rows):
                raise RuntimeError(f"{self.adapter.slug}.classify returned {len(outcomes)} outcomes "
                                   f"for {len(rows)} messages")
            hints = [o.retry_after for o in outcomes if o.retry_after is not None]
            retry_after = max(hints) if hints else None
            self.limiter.observe(response.status, retry_after)
            if response.status >= 300:
                detail = response.body[:500].decode("utf-8", "replace")
        duration_ms = int((time.monotonic() - started) * 1000)
        with self.conn.transaction():
            for row, outcome in zip(rows, outcomes, strict=True):
                self._settle(row, outcome, http_status=http_status, duration_ms=duration_ms, detail=detail)
        return len(rows)

    def _settle(self, row: OutboxRow, outcome: Outcome, *, http_status: int | None, duration_ms: int,
                detail: str | None) -> None:
        now = self.clock()
        at_ms = int(now * 1000)
        attempts = row.attempts + 1
        first = (row.first_attempt_at_ms if row.first_attempt_at_ms is not None else at_ms) / 1000.0
        common: dict[str, Any] = {"at_ms": at_ms, "duration_ms": duration_ms, "http_status": http_status,
                                  "outcome": outcome.kind, "code": outcome.code, "detail": detail}
        if outcome.kind == "ok":
            self.outbox.settle(self.conn, row, DELIVERED, result=outcome.detail, **common)
            if self.on_delivered is not None:
                self.on_delivered(self.conn, row, outcome)
            return
        if outcome.kind == "drop":
            self.outbox.settle(self.conn, row, DEAD, **common)
            return
        if outcome.kind == "auth":
            # Bad credentials fail every message alike: pause the destination, keep the row.
            self.paused_until = max(self.paused_until, now + self.auth_pause_s)
            self.last_pause_code = outcome.code
            delay = self.auth_pause_s
        else:
            delay = self.backoff.delay(attempts, self.rng, retry_after=outcome.retry_after)
        if self.backoff.gives_up(attempts, first, now):
            self.outbox.settle(self.conn, row, DEAD, **common)
        else:
            self.outbox.settle(self.conn, row, RETRY_WAIT, next_attempt_at_ms=at_ms + int(delay * 1000),
                               **common)

    # -- loops -----------------------------------------------------------------------------------

    def drain(self, timeout: float = 30.0, *, include_retries: bool = False) -> int:
        """Deliver until nothing is due (or, with ``include_retries``, until nothing is waiting).

        Stops early at ``timeout`` seconds or when paused; returns how many rows were settled.
        """
        deadline = time.monotonic() + timeout
        total = 0
        while time.monotonic() < deadline and not self.paused and not self._stop.is_set():
            n = self.run_once()
            total += n
            if n:
                continue
            if not include_retries:
                break
            due = self.outbox.next_due_ms(self.conn, self.destination_id)
            self.conn.commit()
            if due is None:
                break
            wait = max(0.0, due / 1000.0 - self.clock())
            if self._stop.wait(min(wait, max(0.0, deadline - time.monotonic()), self.poll_interval) or 0.001):
                break
        return total

    def run(self) -> None:
        """Deliver until ``stop()``; sleeps until the next row is due, at most ``poll_interval``."""
        try:
            while not self._stop.is_set():
                if self.run_once():
                    continue
                due = self.outbox.next_due_ms(self.conn, self.destination_id)
                self.conn.commit()
                wait = self.poll_interval
                if due is not None:
                    wait = min(wait, max(0.0, due / 1000.0 - self.clock()))
                if self.paused:
                    wait = min(self.poll_interval, max(0.0, self.paused_until - self.clock()))
                self._stop.wait(max(wait, 0.005))
        finally:
            self.close()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=f"delivery-{self.destination_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; the request on the wire finishes and is recorded, unsent claims go back."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def result_detail(row_result: str | None) -> dict[str, Any] | None:
    """Decode the ``result`` column (e.g. a created list's ``external_id``)."""
    return None if row_result is None else dict(json.loads(row_result))
