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

The arithmetic is one pure function, ``reserve``, so the same rule runs in one process
(``RateLimiter``) and across processes (``SharedRateLimiter`` in ``shared_limiter.py``, which
keeps the grant log in the store so the cap holds per destination, whoever delivers).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

DEFAULT_WINDOW = 1.0
DEFAULT_MARGIN = 0.05


class Limiter(Protocol):
    """What delivery asks of a limiter: a slot (seconds to wait) and feedback from answers."""

    rate: float

    def acquire(self, cost: int = 1) -> float: ...

    def observe(self, status: int | None, retry_after: float | None = None) -> None: ...


@dataclass(frozen=True)
class Shape:
    """The fixed parameters of one limiter: ``cap`` slots per ``window`` seconds (margin included)."""

    rate: float
    cap: int
    window: float
    whole: bool

    @classmethod
    def of(cls, rate: float, window: float = DEFAULT_WINDOW, margin: float = DEFAULT_MARGIN) -> Shape:
        if rate <= 0:
            raise ValueError("rate must be positive")
        # The log holds whole slots: a fractional rate (Pardot 2, HubSpot 2.5/s...) keeps at least
        # one slot per window and relies on spacing for the fraction.
        return cls(float(rate), max(1, int(rate * window)), window + margin, rate * window >= 1)

    def spacing(self, current_rate: float, smooth: bool = False) -> float:
        # Full rate needs no spacing: the log alone enforces the cap and allows bursts up to it
        # (``smooth`` paces evenly instead, as the shared limiter does).
        if current_rate >= self.rate and self.whole and not smooth:
            return 0.0
        return 1.0 / current_rate


def reserve(log: Sequence[float], now: float, shape: Shape, *, current_rate: float, blocked_until: float,
            cost: int = 1, smooth: bool = False) -> float:
    """The earliest time ``cost`` slots may be granted after the grants in ``log`` (oldest first).

    After adding ``cost`` slots at the returned time, no half-open window of ``shape.window``
    seconds holds more than ``shape.cap`` grants: the (cap - cost + 1)-th most recent grant must
    have left the window.
    """
    if cost < 1:
        raise ValueError("cost must be >= 1")
    if cost > shape.cap:
        raise ValueError(f"cost {cost} exceeds the limiter's cap of {shape.cap} per window")
    at = max(now, blocked_until)
    if log:
        at = max(at, log[-1] + shape.spacing(current_rate, smooth))
    keep = shape.cap - cost + 1
    if len(log) >= keep:
        at = max(at, log[-keep] + shape.window)
    return at


def adapt(current_rate: float, rate: float, min_rate: float, status: int | None, retry_after: float | None
          ) -> float:
    """The rate after one answer: 429 eases it (a tenth with Retry-After, half without); success
    adds back a tenth of the cap."""
    if status == 429:
        factor = 0.9 if retry_after is not None else 0.5
        return max(min_rate, current_rate * factor)
    if status is not None and 200 <= status < 300 and current_rate < rate:
        return min(rate, current_rate + rate / 10.0)
    return current_rate


def default_min_rate(rate: float) -> float:
    return max(rate / 32.0, 0.1)


class RateLimiter:
    """``acquire(cost) -> seconds to wait`` and ``observe(status, retry_after)``; thread-safe, one process."""

    def __init__(self, rate: float, *, window: float = DEFAULT_WINDOW, margin: float = DEFAULT_MARGIN,
                 adaptive: bool = True, min_rate: float | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.shape = Shape.of(rate, window, margin)
        self.rate = self.shape.rate
        self.cap = self.shape.cap
        self.window = self.shape.window
        self.adaptive = adaptive
        self.min_rate = min_rate if min_rate is not None else default_min_rate(self.rate)
        self.current_rate = self.rate
        self._clock = clock
        self._log: deque[float] = deque(maxlen=self.cap)
        self._blocked_until = float("-inf")
        self._lock = threading.Lock()

    def acquire(self, cost: int = 1) -> float:
        """Reserve ``cost`` request slots at one instant; return how long to wait before sending."""
        with self._lock:
            now = self._clock()
            at = reserve(self._log, now, self.shape, current_rate=self.current_rate,
                         blocked_until=self._blocked_until, cost=cost)
            for _ in range(cost):
                self._log.append(at)
            return at - now

    def observe(self, status: int | None, retry_after: float | None = None) -> None:
        """Feed back a response: 429 slows down and pauses; success speeds back up."""
        with self._lock:
            now = self._clock()
            if status == 429:
                pause = retry_after if retry_after is not None else 1.0
                self._blocked_until = max(self._blocked_until, now + pause)
            if self.adaptive:
                self.current_rate = adapt(self.current_rate, self.rate, self.min_rate, status, retry_after)

    @property
    def blocked_until(self) -> float:
        return self._blocked_until
