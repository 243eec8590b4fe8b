"""Randomized exponential backoff, and when to give up (dead letter).

``base * 2**(attempt-1)``, capped, then jittered to between half and all of that ("equal
jitter"), so synchronized failures spread out but never retry sooner than half the schedule.
A message is given up only when BOTH the attempt limit and the time window (Segment's 4 hours)
are exhausted (rudder-server's rule): a burst of fast failures cannot dead-letter a message
within seconds, and a slow trickle cannot retry forever.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

FOUR_HOURS = 4 * 3600.0


@dataclass(frozen=True)
class Backoff:
    base: float = 2.0
    cap: float = 600.0
    max_attempts: int = 10
    give_up_after: float = FOUR_HOURS
    jitter: bool = True

    def delay(self, attempt: int, rng: random.Random | None = None, *,
              retry_after: float | None = None) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); honours Retry-After."""
        raw = min(self.cap, self.base * (2.0 ** max(0, attempt - 1)))
        if self.jitter:
            raw = raw * (0.5 + 0.5 * (rng or random).random())
        if retry_after is not None:
            raw = max(raw, min(retry_after, self.give_up_after))
        return raw

    def gives_up(self, attempts: int, first_attempt_at: float, now: float) -> bool:
        """True once ``attempts`` reached the limit and the window since the first attempt passed."""
        return attempts >= self.max_attempts and now - first_attempt_at >= self.give_up_after
