"""Per-source request cap for the Tracking API (optional, ``sources[].rate_limit``)."""

from __future__ import annotations

import math
import threading
import time


class RequestBucket:
    """A token bucket; ``try_take`` returns 0 when allowed, else seconds until a token frees."""

    def __init__(self, rate: float, burst: int | None = None) -> None:
        self.rate = rate
        self.capacity = float(burst if burst is not None else max(1, math.ceil(rate)))
        self.tokens = self.capacity
        self.updated = time.monotonic()
        self._lock = threading.Lock()

    def try_take(self) -> float:
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate
