"""One destination's delivery: claim due outbox rows, run exchanges concurrently, settle each row.

**Concurrency without head-of-line blocking.** Real vendors answer in 100-500 ms, so one
request at a time cannot reach a 100/s cap, and one profile whose requests hang must not hold
back the others. The worker keeps up to ``target.concurrency`` exchanges in flight on a thread
pool; as soon as one finishes, it claims more. Per-profile order still holds because a claim
puts all of a profile's due messages into one exchange, in order, and a profile with a message
in flight or waiting for a retry has nothing claimable (``claims.py``); inside an exchange, a
profile's later messages are not sent once an earlier one failed: an Entered is never
overtaken by its Exited. A hung request ties up one thread until its timeout; the rest keep
flowing.

**Filtering before sending.** A claimed message the adapter cannot take (an event type it does
not speak), that the message's ``integrations`` object excludes, or that the destination's
filters drop is settled ``filtered`` with its reason and never sent.

**Settling.** Every item gets its own outcome (``Executor``), so a batch answer failing 2 of 10
items retries exactly those 2. Each attempt is recorded with every HTTP request it made, in the
transaction that moves the row. Delivered rows wait, ``applied`` false, for activation to fold
them into what the destination holds; delivery never calls activation.

Shutdown: ``stop()`` stops claiming, lets requests on the wire finish and be recorded, and
gives claimed-but-unsent rows back untouched, so nothing is left in flight; ``drain()``
delivers everything currently due first.
"""

from __future__ import annotations

import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import structlog

from traitsync.delivery.backoff import Backoff
from traitsync.delivery.executor import ExchangeResult, Executor, Stopped
from traitsync.delivery.limiter import Limiter
from traitsync.delivery.outbox import DEAD, DELIVERED, RETRY_WAIT, Outbox, OutboxRow
from traitsync.delivery.pauses import pause, paused_until, resume
from traitsync.delivery.shared_limiter import SharedRateLimiter
from traitsync.delivery.target import DeliveryTarget
from traitsync.delivery.transport import HttpTransport, Transport
from traitsync.destinations.base import Item, Outcome, Previous
from traitsync.destinations.mappings import FILTERED_BY_DESTINATION_FILTER, dropped_by, map_fields
from traitsync.store.database import Connection, Database

log = structlog.get_logger("traitsync.delivery")

UNSUPPORTED = "UNSUPPORTED_EVENT_TYPE"
FILTERED_BY_INTEGRATIONS = "FILTERED_BY_INTEGRATIONS_OBJECT"


def excluded_by_integrations(message: dict[str, Any], name: str) -> bool:
    """Segment's rule: an explicit ``false`` for the destination, or ``All: false`` without it."""
    integrations = message.get("integrations")
    if not isinstance(integrations, dict):
        return False
    explicit = integrations.get(name)
    if explicit is not None:
        return explicit is False
    return integrations.get("All") is False


def item_for(row: OutboxRow, target: DeliveryTarget) -> Item:
    extra = row.adapter_input or {}
    prev = extra.get("previous")
    previous = None if prev is None else Previous(prev.get("value"),
                                                  tuple((str(t), str(v)) for t, v in prev.get("identifiers", [])))
    fields = map_fields(target.mappings, row.message) if target.mappings else {}
    return Item(row.message, fields, previous, dict(extra.get("traits") or {}))


class DestinationWorker:
    """Deliver one destination's outbox rows with ``target.concurrency`` exchanges in flight."""

    name: str

    def __init__(self, db: Database, target: DeliveryTarget, *, limiter: Limiter | None = None,
                 backoff: Backoff | None = None, transport: Transport | None = None, lease_s: float = 120.0,
                 auth_pause_s: float = 300.0, poll_interval: float = 0.5, clock: Callable[[], float] = time.time,
                 rng: random.Random | None = None) -> None:
        self.db = db
        self.target = target
        self.destination_id = target.destination_id
        self.name = f"delivery-{target.destination_id}"
        self.adapter = target.adapter
        # The default is the store-backed limiter: it paces evenly and holds the cap across threads and
        # processes; the in-process RateLimiter allows bursts and suits one sender at a time.
        self.limiter: Limiter = limiter or SharedRateLimiter(db, target.destination_id, target.rate)
        self.backoff = backoff or Backoff()
        self.transport: Transport = transport or HttpTransport()
        self.lease_ms = int(lease_s * 1000)
        self.auth_pause_s = auth_pause_s
        self.poll_interval = poll_interval
        self.clock = clock
        self.rng = rng or random.Random()
        self.outbox = Outbox(db, clock=self._now_ms)
        self._stop = threading.Event()
        self.executor = Executor(target, self.transport, self.limiter, stop=self._stop, hold=lambda: self.paused)
        self._thread: threading.Thread | None = None
        self._local = threading.local()
        self._settled_signal = threading.Condition()
        self._in_flight = 0
        self._conns: list[Connection] = []
        self._conns_lock = threading.Lock()
        self._lock_conn: Connection | None = None
        self._pause_checked_at = 0.0
        self._paused_until = 0.0
        self.last_pause_code: str | None = None

    # -- time, connections and pauses -----------------------------------------------------------

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @property
    def conn(self) -> Connection:
        """The calling thread's own connection (the dispatcher and each pool thread have one)."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.db.connect()
            self._local.conn = conn
            with self._conns_lock:
                self._conns.append(conn)
        return conn

    def close(self) -> None:
        """Close the calling thread's connection."""
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
            with self._conns_lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    def _close_pool_connections(self) -> None:
        """Close the connections of pool threads that have ended (all but the calling thread's)."""
        mine = getattr(self._local, "conn", None)
        with self._conns_lock:
            others = [c for c in self._conns if c is not mine]
            self._conns = [c for c in self._conns if c is mine]
        for conn in others:
            conn.close()

    @property
    def paused(self) -> bool:
        """Whether the destination is paused (read from the store at most every 0.5 s)."""
        now = self.clock()
        if now - self._pause_checked_at >= 0.5:
            conn = self.conn
            until_ms, code = paused_until(conn, self.destination_id)
            conn.commit()
            self._paused_until, self.last_pause_code = until_ms / 1000.0, code
            self._pause_checked_at = now
        return now < self._paused_until

    @property
    def paused_until(self) -> float:
        return self._paused_until if self.paused else 0.0

    def wake(self) -> None:
        """New rows may be waiting (activation enqueued some): look now rather than at the next poll."""
        with self._settled_signal:
            self._settled_signal.notify_all()

    def resume(self) -> None:
        """Lift an auth pause (after the user fixed the credentials)."""
        conn = self.conn
        with conn.transaction():
            resume(conn, self.destination_id)
        self._paused_until = 0.0

    def _pause(self, seconds: float, code: str | None) -> None:
        until = self.clock() + seconds
        if until <= self._paused_until:
            return
        self._paused_until, self.last_pause_code = until, code
        conn = self.conn
        pause(conn, self.destination_id, int(until * 1000), code, self.target.rate)

    # -- claiming and filtering -------------------------------------------------------------------

    def _claim(self, groups: int) -> list[list[OutboxRow]]:
        """Claim up to ``groups`` exchanges' worth of due rows; settle the ones that are filtered.

        Each group holds whole runs of profiles' messages in order (``claims.py``), so groups
        can run concurrently; a filtered row simply leaves its group.
        """
        claimed = self.outbox.claim_groups(self.conn, self.destination_id, groups, self.target.batch_size,
                                           lease_ms=self.lease_ms, repeats=self.adapter.batch_repeats_profiles)
        if not claimed:
            return []
        keep: list[list[OutboxRow]] = []
        filtered: list[tuple[OutboxRow, str]] = []
        for group in claimed:
            kept: list[OutboxRow] = []
            for row in group:
                reason = self._filter_reason(row)
                if reason is None:
                    kept.append(row)
                else:
                    filtered.append((row, reason))
            if kept:
                keep.append(kept)
        if filtered:
            conn = self.conn
            with conn.transaction():
                for row, reason in filtered:
                    self.outbox.filter(conn, row, reason, at_ms=self._now_ms())
        self._filtered_now = len(filtered)
        return keep

    def _filter_reason(self, row: OutboxRow) -> str | None:
        if not self.adapter.supports(row.message):
            return UNSUPPORTED
        if excluded_by_integrations(row.message, self.target.name):
            return FILTERED_BY_INTEGRATIONS
        if self.target.filters and dropped_by(self.target.filters, row.message) is not None:
            return FILTERED_BY_DESTINATION_FILTER
        return None

    # -- one exchange, on a pool thread ---------------------------------------------------------------

    def _deliver(self, rows: list[OutboxRow]) -> int:
        started = time.monotonic()
        conn = self.conn

        def settle_now(indices: list[int], outcomes: list[Outcome], part: ExchangeResult) -> None:
            """Settle a request's rows as soon as it is answered (a profile's next message can go)."""
            duration_ms = int((time.monotonic() - started) * 1000)
            with conn.transaction():
                for i, outcome in zip(indices, outcomes, strict=True):
                    if outcome.kind != "unsent":
                        self._settle(conn, rows[i], outcome, part, duration_ms)

        try:
            result = self.executor.run([item_for(r, self.target) for r in rows], settle_now,
                                       keys=[r.order_key for r in rows])
        except Stopped:
            self.outbox.release(conn, [r.id for r in rows])
            return 0
        duration_ms = int((time.monotonic() - started) * 1000)
        unsent: list[int] = []
        with conn.transaction():
            for i, (row, outcome) in enumerate(zip(rows, result.outcomes, strict=True)):
                if outcome.kind == "unsent":
                    unsent.append(row.id)
                elif i not in result.settled:
                    self._settle(conn, row, outcome, result, duration_ms)
        if unsent:
            self.outbox.release(conn, unsent)
        return len(rows) - len(unsent)

    def _deliver_safely(self, rows: list[OutboxRow]) -> int:
        try:
            return self._deliver(rows)
        except Exception:
            # Storage failed while settling: the lease returns the rows; drop the connection.
            log.exception("settling a delivery failed; the rows return when their lease ends",
                          destination=self.destination_id)
            self.close()
            return 0
        finally:
            with self._settled_signal:
                self._in_flight -= 1
                self._settled_signal.notify_all()

    def _settle(self, conn: Connection, row: OutboxRow, outcome: Outcome, result: ExchangeResult,
                duration_ms: int) -> None:
        now = self.clock()
        at_ms = int(now * 1000)
        attempts = row.attempts + 1
        first = (row.first_attempt_at_ms if row.first_attempt_at_ms is not None else at_ms) / 1000.0
        detail = outcome.message or result.detail
        common: dict[str, Any] = {"at_ms": at_ms, "duration_ms": duration_ms, "http_status": result.http_status,
                                  "outcome": outcome.kind, "code": outcome.code,
                                  "detail": self.executor.redact(detail),
                                  "requests": json.dumps(result.requests, separators=(",", ":"))}
        if outcome.kind == "ok":
            self.outbox.settle(conn, row, DELIVERED, result=outcome.detail, **common)
            return
        if outcome.kind == "drop":
            self.outbox.settle(conn, row, DEAD, **common)
            self._dead_letter(row, outcome, attempts)
            return
        if outcome.kind == "auth":
            # Bad credentials fail every message alike: pause the destination, keep the row.
            self._pause(self.auth_pause_s, outcome.code)
            delay = self.auth_pause_s
        else:
            delay = self.backoff.delay(attempts, self.rng, retry_after=outcome.retry_after)
        if self.backoff.gives_up(attempts, first, now):
            self.outbox.settle(conn, row, DEAD, **common)
            self._dead_letter(row, outcome, attempts)
        else:
            self.outbox.settle(conn, row, RETRY_WAIT, next_attempt_at_ms=at_ms + int(delay * 1000), **common)

    def _dead_letter(self, row: OutboxRow, outcome: Outcome, attempts: int) -> None:
        log.warning("message dead-lettered; `traitsync deliveries replay` sends it again",
                    destination=self.destination_id, message_id=row.message_id, code=outcome.code,
                    attempts=attempts)

    # -- the dispatcher -----------------------------------------------------------------------------

    def _dispatch(self, *, until_idle: bool, include_retries: bool = False, deadline: float | None = None) -> int:
        """Keep up to ``concurrency`` exchanges in flight until stopped (or, with ``until_idle``,
        until nothing is due and nothing is in flight). Returns the rows settled."""
        settled = 0
        futures: list[Future[int]] = []
        pool = ThreadPoolExecutor(max_workers=self.target.concurrency,
                                  thread_name_prefix=f"delivery-{self.destination_id}")
        try:
            while not self._stop.is_set():
                if deadline is not None and time.monotonic() >= deadline:
                    break
                if self.paused:
                    if until_idle:
                        break
                    self._stop.wait(min(self.poll_interval, max(0.005, self._paused_until - self.clock())))
                    continue
                # Read before claiming: if nothing was in flight then and nothing is claimable now,
                # nothing can become claimable without time passing (no settle can race the claim).
                in_flight_before = self._in_flight
                free = self.target.concurrency - in_flight_before
                claimed: list[list[OutboxRow]] = []
                self._filtered_now = 0
                if free > 0:
                    claimed = self._claim(free)
                    settled += self._filtered_now
                for batch in claimed:
                    with self._settled_signal:
                        self._in_flight += 1
                    futures.append(pool.submit(self._deliver_safely, batch))
                done = [f for f in futures if f.done()]
                futures = [f for f in futures if not f.done()]
                settled += sum(f.result() for f in done)
                if claimed and self._in_flight < self.target.concurrency:
                    continue  # more may be due right now
                if until_idle and not claimed and in_flight_before == 0:
                    if not include_retries:
                        break
                    due = self.outbox.next_due_ms(self.conn, self.destination_id)
                    self.conn.commit()
                    if due is None:
                        break
                    wait = max(0.001, min(due / 1000.0 - self.clock(), self.poll_interval))
                    self._stop.wait(wait)
                    continue
                self._wait_for_work()
        finally:
            for future in futures:
                settled += future.result()
            pool.shutdown(wait=True)
            self._close_pool_connections()
        return settled

    def _wait_for_work(self) -> None:
        """Sleep until an exchange finishes, the next row is due, or the poll interval passes.

        A row that is due but was not claimed waits behind its profile's message in flight, so
        only a settle can free it: then we wait for a settle rather than poll.
        """
        if self._in_flight > 0:
            # Exchanges are running: a settle is what most likely frees the next message, and the
            # due-time query is not free on a long queue. New rows are seen within poll_interval.
            with self._settled_signal:
                if self._in_flight > 0:
                    self._settled_signal.wait(min(self.poll_interval, 0.05))
            return
        due = self.outbox.next_due_ms(self.conn, self.destination_id)
        self.conn.commit()
        wait = self.poll_interval
        if due is not None:
            until_due = due / 1000.0 - self.clock()
            if until_due > 0 or self._in_flight == 0:
                wait = min(wait, max(until_due, 0.0))
        with self._settled_signal:
            self._settled_signal.wait(max(wait, 0.002))

    # -- loops -------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """One round: claim what is due now (up to ``concurrency`` batches), deliver it concurrently,
        wait for it; returns how many rows were settled (filtered ones included)."""
        if self._stop.is_set() or self.paused:
            return 0
        self._filtered_now = 0
        batches = self._claim(self.target.concurrency)
        settled = self._filtered_now
        if not batches:
            return settled
        with self._settled_signal:
            self._in_flight += len(batches)
        with ThreadPoolExecutor(max_workers=min(len(batches), self.target.concurrency),
                                thread_name_prefix=self.name) as pool:
            settled += sum(pool.map(self._deliver_safely, batches))
        self._close_pool_connections()
        return settled

    def drain(self, timeout: float = 30.0, *, include_retries: bool = False) -> int:
        """Deliver until nothing is due (or, with ``include_retries``, until nothing is waiting).

        Stops early at ``timeout`` seconds or when paused; returns how many rows were settled.
        """
        return self._dispatch(until_idle=True, include_retries=include_retries,
                              deadline=time.monotonic() + timeout)

    def run(self, stop: threading.Event | None = None) -> None:
        """Deliver until ``stop`` (or ``stop()``); the worker shape every stage shares."""
        watcher: threading.Thread | None = None
        if stop is not None:
            def relay() -> None:
                stop.wait()
                self._stop.set()
                with self._settled_signal:
                    self._settled_signal.notify_all()
            watcher = threading.Thread(target=relay, name=f"{self.name}-stop", daemon=True)
            watcher.start()
        try:
            self.recover()
            self._dispatch(until_idle=False)
        finally:
            self.close()
            if self._lock_conn is not None:
                self._lock_conn.close()
                self._lock_conn = None

    def recover(self) -> int:
        """Give back in-flight rows orphaned by a killed process; returns how many.

        A process killed mid-delivery leaves rows ``in_flight`` under a lease (2 minutes), and
        per-profile order holds that profile's later messages behind them. We release them at
        once when no other live process can own them: on SQLite only one process delivers; on
        PostgreSQL every delivering process holds a shared advisory lock per destination for its
        lifetime (the server drops it when a killed process's session ends), so winning the
        exclusive lock proves every in-flight row is orphaned. Otherwise the lease decides.
        """
        conn: Connection | None = self.db.connect()
        assert conn is not None
        try:
            released = 0
            if self.db.dialect == "postgresql":
                key = _lock_key(self.destination_id)
                alone = bool(conn.scalar("SELECT pg_try_advisory_lock(?)", (key,)))
                if alone:
                    released = self.outbox.release_in_flight(conn, self.destination_id)
                    conn.execute("SELECT pg_advisory_unlock(?)", (key,))
                conn.execute("SELECT pg_advisory_lock_shared(?)", (key,))
                conn.commit()
                self._lock_conn, conn = conn, None  # held (session lock) until the worker stops
            else:
                released = self.outbox.release_in_flight(conn, self.destination_id)
            if released:
                log.info("released in-flight messages of a stopped process", destination=self.destination_id,
                         count=released)
            return released
        finally:
            if conn is not None:
                conn.close()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop claiming; requests on the wire finish and are recorded, unsent claims go back."""
        self._stop.set()
        with self._settled_signal:
            self._settled_signal.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def _lock_key(destination_id: str) -> int:
    digest = hashlib.sha256(f"traitsync.delivery:{destination_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def result_detail(row_result: str | None) -> dict[str, Any] | None:
    """Decode the ``result`` column (e.g. a created list's ``external_id``)."""
    return None if row_result is None else dict(json.loads(row_result))
