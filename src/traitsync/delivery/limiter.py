"""Per-destination request limiter: a sliding-window log that never exceeds the cap.

A token bucket whose burst equals its rate lets ``2 x rate`` requests into a sliding second
(a full bucket spent at the end of one second, refilled and spent again at the start of the
next), which is exactly what gets a sync throttled. Instead we keep the grant times of the
last ``cap`` slots and grant a new slot only once the slot ``cap`` positions earlier is a full
window old. Grants are reservations made in time order, so at the moment each slot is granted
every earlier slot is known, and the invariant "no half-open window of ``window`` seconds holds
more than ``cap`` slots" holds for every window, not just aligned ones. ``window`` defaults to
1 s plus a small margin so that network jitter between our send and the vendor's receipt does
not squeeze two grants a full window apart into the vendor's second.

The adaptive part (after rudder-server's throttler): every 429 blocks all grants until its
``Retry-After``. A 429 that says how long to wait is an exact instruction, so the rate only
eases by a tenth; a 429 without ``Retry-After`` leaves us guessing, so the rate halves. Each
success adds back a tenth of the cap. A vendor that sheds a few requests at random (the 10%
fault benchmark) thus costs little throughput, while one whose real limit is below our cap
keeps pushing the rate down until the 429s stop.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

DEFAULT_WINDOW = 1.0
DEFAULT_MARGIN = 0.05


class RateLimiter:
    """``acquire(cost) -> seconds to wait`` and ``observe(status, retry_after)``; thread-safe."""

    def __init__(self, rate: float, *, window: float = DEFAULT_WINDOW, margin: float = DEFAULT_MARGIN,
                 adaptive: bool = True, min_rate: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self.rate = float(rate)
        # The log holds whole slots: a fractional rate (Pardot 2, HubSpot 2.5/s...) keeps at least
        # one slot per window and relies on the spacing below for the fraction.
        self.cap = max(1, int(rate * window))
        self._whole = rate * window >= 1
        self.window = window + margin
        self.adaptive = adaptive
        self.min_rate = min_rate if min_rate is not None else max(self.rate / 32.0, 0.1)
        self.current_rate = self.rate
        self._clock = clock
        self._log: deque[float] = deque(maxlen=self.cap)
        self._blocked_until = float("-inf")
        self._lock = threading.Lock()

    def _spacing(self) -> float:
        # Full rate needs no spacing: the log alone enforces the cap and allows bursts up to it.
        if self.current_rate >= self.rate and self._whole:
            return 0.0
        return 1.0 / self.current_rate

    def acquire(self, cost: int = 1) -> float:
        """Reserve ``cost`` request slots at one instant; return how long to wait before sending."""
        if cost < 1:
            raise ValueError("cost must be >= 1")
        if cost > self.cap:
            raise ValueError(f"cost {cost} exceeds the limiter's cap of {self.cap} per window")
        with self._lock:
            now = self._clock()
            at = max(now, self._blocked_until)
            log = self._log
            if log:
                at = max(at, log[-1] + self._spacing())
            # After adding ``cost`` slots at ``at``, the window ending at ``at`` may hold at most
            # ``cap``: the (cap - cost + 1)-th most recent grant must have left it.
            keep = self.cap - cost + 1
            if len(log) >= keep:
                at = max(at, log[-keep] + self.window)
            for _ in range(cost):
                log.append(at)
            return at - now

    def observe(self, status: int | None, retry_after: float | None = None) -> None:
        """Feed back a response: 429 slows down and pauses; success speeds back up."""
        with self._lock:
            now = self._clock()
            if status == 429:
                pause = retry_after if retry_after is not None else 1.0
                self._blocked_until = max(self._blocked_until, now + pause)
                if self.adaptive:
                    factor = 0.9 if retry_after is not None else 0.5
                    self.current_rate = max(self.min_rate, self.current_rate * factor)
            elif status is not None and 200 <= status < 300 and self.current_rate < self.rate:
                self.current_rate = min(self.rate, self.current_rate + self.rate / 10.0)

    @property
    def blocked_until(self) -> float:
        return self._blocked_until
