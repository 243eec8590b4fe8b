"""Backoff schedule and the give-up rule (both limits must be exhausted)."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from traitsync.delivery.backoff import FOUR_HOURS, Backoff


def test_exponential_with_cap_without_jitter() -> None:
    b = Backoff(base=2.0, cap=60.0, jitter=False)
    assert [b.delay(n) for n in range(1, 8)] == [2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]


@given(st.integers(min_value=1, max_value=60), st.integers(min_value=0, max_value=2**32))
def test_jitter_stays_between_half_and_full(attempt: int, seed: int) -> None:
    b = Backoff(base=1.0, cap=300.0)
    full = min(300.0, 2.0 ** (attempt - 1))
    d = b.delay(attempt, random.Random(seed))
    assert full / 2 <= d <= full


def test_retry_after_is_honoured_but_bounded() -> None:
    b = Backoff(base=1.0, cap=10.0, jitter=False)
    assert b.delay(1, retry_after=30.0) == 30.0
    assert b.delay(5, retry_after=0.5) == 10.0
    assert b.delay(1, retry_after=1e9) == FOUR_HOURS


def test_gives_up_only_after_both_limits() -> None:
    b = Backoff(max_attempts=5)
    assert not b.gives_up(5, 0.0, FOUR_HOURS - 1)    # attempts exhausted, window not
    assert not b.gives_up(4, 0.0, FOUR_HOURS + 100)  # window exhausted, attempts not
    assert b.gives_up(5, 0.0, FOUR_HOURS)
    assert b.gives_up(9, 100.0, 100.0 + FOUR_HOURS)
