"""The limiter never lets more than ``rate`` requests into any 1-second window (fake clock)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traitsync.delivery.limiter import RateLimiter


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def max_in_any_window(times: list[float], window: float = 1.0) -> int:
    """Largest number of grants inside any closed window [t, t + window]."""
    times = sorted(times)
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while times[lo] < t - window:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def test_burst_up_to_rate_then_spaced() -> None:
    clock = FakeClock()
    lim = RateLimiter(5, margin=0.0, clock=clock)
    waits = [lim.acquire() for _ in range(12)]
    assert waits == [0.0] * 5 + [1.0] * 5 + [2.0, 2.0]


def test_bucket_at_boundary_does_not_double() -> None:
    """The classic token-bucket failure: 5 at t=0.99 and 5 more at t=1.0 is 10 in a second."""
    clock = FakeClock()
    lim = RateLimiter(5, margin=0.0, clock=clock)
    clock.now += 0.99
    grants = [clock.now + lim.acquire() for _ in range(5)]
    clock.now += 0.01
    grants += [clock.now + lim.acquire() for _ in range(5)]
    assert max_in_any_window(grants, 0.999999) == 5
    assert grants[5:] == [pytest.approx(1001.99)] * 5


def test_cost_reserves_several_slots() -> None:
    clock = FakeClock()
    lim = RateLimiter(4, margin=0.0, clock=clock)
    assert lim.acquire(3) == 0.0
    assert lim.acquire(2) == 1.0  # only one slot left in the first window
    with pytest.raises(ValueError):
        lim.acquire(5)
    with pytest.raises(ValueError):
        lim.acquire(0)


def test_fractional_and_slow_rates() -> None:
    clock = FakeClock()
    lim = RateLimiter(0.5, margin=0.0, clock=clock)
    assert [lim.acquire() for _ in range(3)] == [0.0, 2.0, 4.0]


def test_429_pauses_and_slows_then_recovers() -> None:
    clock = FakeClock()
    lim = RateLimiter(10, margin=0.0, clock=clock)
    lim.observe(429, retry_after=3.0)  # an exact instruction: pause 3 s, ease the rate by a tenth
    assert lim.current_rate == pytest.approx(9.0)
    assert lim.acquire() == 3.0
    assert lim.acquire() == pytest.approx(3.0 + 1 / 9.0)
    lim.observe(200)
    assert lim.current_rate == 10.0  # a tenth of the cap back per success
    clock.now += 10
    lim.observe(429)  # no Retry-After: pause one second and halve
    assert lim.blocked_until == clock.now + 1.0
    assert lim.current_rate == 5.0
    for _ in range(20):
        lim.observe(429)
    assert lim.current_rate == lim.min_rate
    for _ in range(60):
        lim.observe(429, 0.0)
    assert lim.current_rate == lim.min_rate


ops = st.lists(st.tuples(st.floats(min_value=0.0, max_value=1.5), st.integers(min_value=1, max_value=3),
                         st.sampled_from([None, None, None, 200, 429])), min_size=1, max_size=120)


@settings(max_examples=200, deadline=None)
@given(rate=st.integers(min_value=1, max_value=40), steps=ops, margin=st.sampled_from([0.0, 0.05]))
def test_no_window_exceeds_the_cap(rate: int, steps: list[tuple[float, int, int | None]], margin: float) -> None:
    clock = FakeClock()
    lim = RateLimiter(rate, margin=margin, clock=clock)
    grants: list[float] = []
    for advance, cost, status in steps:
        clock.now += advance
        cost = min(cost, lim.cap)
        wait = lim.acquire(cost)
        assert wait >= 0
        grants.extend([clock.now + wait] * cost)
        if status is not None:
            lim.observe(status, 0.5 if status == 429 else None)
    # Half-open windows [t, t+1) hold at most ``rate``; with a margin, closed windows do too.
    assert max_in_any_window(grants, 1.0 - 1e-9 if margin == 0.0 else 1.0) <= rate


@settings(max_examples=100, deadline=None)
@given(rate=st.integers(min_value=1, max_value=50), n=st.integers(min_value=1, max_value=200))
def test_saturated_throughput_is_the_rate(rate: int, n: int) -> None:
    """Not over-conservative: n back-to-back requests finish within ceil(n / rate) windows."""
    clock = FakeClock()
    lim = RateLimiter(rate, margin=0.0, clock=clock)
    last = max(lim.acquire() for _ in range(n))
    assert last == float((n - 1) // rate)
