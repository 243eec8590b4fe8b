"""The rate cap per destination, whatever processes (or machines) deliver to it.

The grant log of the sliding-window limiter (``limiter.reserve``) lives in one row of
``delivery_destination_state``; each process reserves slots under that row's lock, so grants
from every process land in one log and no 1 s window ever holds more than the cap. Times are
the database's clock on PostgreSQL (``clock_timestamp()``), so machines with skewed clocks
still agree; a process sleeps ``grant - db_now`` on its own clock. On SQLite every process
shares the machine's clock.

**Blocks.** A round trip per request would cost a transaction per request, so a process
reserves a small block of consecutive slots at once (a tenth of the cap, at most 16) and hands
them to its threads in order. Slots are paced evenly (one every ``1/rate`` seconds) rather than
granted in bursts up to the cap, so a block is spread over time and each slot is taken by the
next thread ready to send. A slot not used within a few milliseconds of its time is thrown away
rather than used late: sends bunched after a stall could otherwise crowd one window. A wasted
slot only lowers throughput, never raises it above the cap. The executor applies the same rule
once more at send time (a thread that overslept its slot takes a new one), so every request
leaves within a few milliseconds of its grant, and the window's safety margin can be 30 ms (the
in-process limiter keeps 50 ms): sustained throughput is at most cap / (1 + margin), 97%.

The adaptive part (429 eases the rate and pauses until ``Retry-After``) is stored in the same
row, so a throttle seen by one process slows all of them.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

import orjson

from traitsync.delivery.limiter import (
    DEFAULT_WINDOW,
    Shape,
    adapt,
    default_min_rate,
    reserve,
)
from traitsync.store.database import Connection, Database

#: A reserved slot may be used up to this late (seconds); later it is discarded.
STALE_AFTER = 0.005
SHARED_MARGIN = 0.03


class SharedRateLimiter:
    """``acquire() -> seconds to wait`` against the store's grant log of one destination."""

    def __init__(self, db: Database, destination_id: str, rate: float, *, window: float = DEFAULT_WINDOW,
                 margin: float = SHARED_MARGIN, block: int | None = None, adaptive: bool = True,
                 clock: Callable[[], float] = time.monotonic, db_clock: Callable[[], float] | None = None) -> None:
        self.db = db
        self.destination_id = destination_id
        self.shape = Shape.of(rate, window, margin)
        self.rate = self.shape.rate
        self.block = block if block is not None else max(1, min(16, self.shape.cap // 10))
        self.adaptive = adaptive
        self.min_rate = default_min_rate(self.rate)
        self._clock = clock
        self._db_clock = db_clock  # tests: the shared clock, in seconds, instead of the database's
        self._slots: deque[float] = deque()  # reserved grant times, on the local clock
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- connection --------------------------------------------------------------------------

    def _conn(self) -> Connection:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = self.db.connect()
            self._local.conn = conn
        return conn

    def close(self) -> None:
        conn: Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None

    def _db_now_ms(self, conn: Connection) -> float:
        if self._db_clock is not None:
            return self._db_clock() * 1000.0
        if self.db.dialect == "postgresql":
            return float(conn.scalar("SELECT extract(epoch from clock_timestamp()) * 1000"))
        return time.time() * 1000.0

    def _row(self, conn: Connection) -> tuple[list[float], float, float]:
        lock = " FOR UPDATE" if self.db.dialect == "postgresql" else ""
        row = conn.fetchone("SELECT grants, blocked_until_ms, current_rate FROM delivery_destination_state"
                            f" WHERE destination_id = ?{lock}", (self.destination_id,))
        if row is None:
            conn.execute("INSERT INTO delivery_destination_state (destination_id, grants, blocked_until_ms,"
                         " current_rate, paused_until_ms, updated_at_ms) VALUES (?, ?, ?, ?, ?, ?)"
                         " ON CONFLICT (destination_id) DO NOTHING",
                         (self.destination_id, "[]", 0, self.rate, 0, int(time.time() * 1000)))
            row = conn.fetchone("SELECT grants, blocked_until_ms, current_rate FROM delivery_destination_state"
                                f" WHERE destination_id = ?{lock}", (self.destination_id,))
            assert row is not None
        return orjson.loads(row[0]), float(row[1]), min(float(row[2]), self.rate)

    # -- the Limiter protocol ------------------------------------------------------------------

    def reserve_block(self, count: int) -> list[float]:
        """Reserve ``count`` consecutive slots in the shared log; their times on the local clock."""
        conn = self._conn()
        with conn.transaction():
            db_now_ms = self._db_now_ms(conn)
            local_now = self._clock()
            grants_ms, blocked_ms, current_rate = self._row(conn)
            # Grants that left the window can no longer hold a new one back (a new grant is never
            # earlier than now), except the last one, which also sets the spacing: drop the rest,
            # so the row stays as small as the traffic of the last window.
            horizon_ms = db_now_ms - self.shape.window * 1000.0
            log = [g / 1000.0 for g in grants_ms[:-1] if g > horizon_ms] + [g / 1000.0 for g in grants_ms[-1:]]
            out: list[float] = []
            for _ in range(count):
                at = reserve(log, db_now_ms / 1000.0, self.shape, current_rate=current_rate,
                             blocked_until=blocked_ms / 1000.0, smooth=True)
                log.append(at)
                out.append(local_now + (at - db_now_ms / 1000.0))
            kept = log[-self.shape.cap:]
            conn.execute("UPDATE delivery_destination_state SET grants = ?, updated_at_ms = ? WHERE destination_id = ?",
                         (orjson.dumps([round(t * 1000.0, 3) for t in kept]).decode(), int(db_now_ms),
                          self.destination_id))
        return out

    def acquire(self, cost: int = 1) -> float:
        """Seconds to wait before sending one request (``cost`` > 1 takes that many slots)."""
        with self._lock:
            slot = 0.0
            for _ in range(cost):
                slot = self._next_slot()
            return max(0.0, slot - self._clock())

    def _next_slot(self) -> float:
        while True:
            now = self._clock()
            while self._slots and self._slots[0] < now - STALE_AFTER:
                self._slots.popleft()
            if self._slots:
                return self._slots.popleft()
            self._slots.extend(self.reserve_block(self.block))

    def observe(self, status: int | None, retry_after: float | None = None) -> None:
        """A 429 pauses every process until ``Retry-After`` and eases the shared rate."""
        if status != 429 and not (self.adaptive and status is not None and 200 <= status < 300):
            return
        conn = self._conn()
        if status != 429:
            # Success only matters while the rate is below the cap: read without a write lock first.
            current = conn.scalar("SELECT current_rate FROM delivery_destination_state WHERE destination_id = ?",
                                  (self.destination_id,))
            conn.commit()
            if current is None or float(current) >= self.rate:
                return
        if status == 429:
            # Slots reserved for the pause the vendor asked for are not to be used. Dropped before
            # (never inside) the transaction: ``acquire`` holds this lock while it waits for the store's.
            resume_at = self._clock() + (retry_after if retry_after is not None else 1.0)
            with self._lock:
                while self._slots and self._slots[0] < resume_at:
                    self._slots.popleft()
        with conn.transaction():
            db_now_ms = self._db_now_ms(conn)
            _, blocked_ms, current_rate = self._row(conn)
            if status == 429:
                pause_ms = (retry_after if retry_after is not None else 1.0) * 1000.0
                blocked_ms = max(blocked_ms, db_now_ms + pause_ms)
            if self.adaptive:
                current_rate = adapt(current_rate, self.rate, self.min_rate, status, retry_after)
            conn.execute("UPDATE delivery_destination_state SET blocked_until_ms = ?, current_rate = ?,"
                         " updated_at_ms = ? WHERE destination_id = ?",
                         (int(blocked_ms), current_rate, int(db_now_ms), self.destination_id))

    @property
    def blocked_until(self) -> float:
        """Until when (on the local clock) every process holds back after a 429."""
        conn = self._conn()
        row = conn.fetchone("SELECT blocked_until_ms FROM delivery_destination_state WHERE destination_id = ?",
                            (self.destination_id,))
        db_now_ms = self._db_now_ms(conn)
        conn.commit()
        if row is None:
            return float("-inf")
        return self._clock() + (float(row[0]) - db_now_ms) / 1000.0
