"""The token bucket, with the clock passed in (no sleeping)."""

from __future__ import annotations

import pytest

from inferwatch.ratelimit import RateLimiter


def test_a_burst_then_the_steady_rate() -> None:
    limiter = RateLimiter(rate=2.0, burst=3)
    assert [limiter.take("k", now=100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.take("k", now=100.0) == pytest.approx(0.5)  # half a second to the next token
    assert limiter.take("k", now=100.5) == 0.0
    assert limiter.take("k", now=100.5) > 0
    # A long pause refills to the burst, never past it.
    assert [limiter.take("k", now=1000.0) for _ in range(4)][-1] > 0


def test_keys_have_their_own_buckets() -> None:
    limiter = RateLimiter(rate=0.01, burst=1)
    assert limiter.take("a", now=0.0) == 0.0
    assert limiter.take("a", now=0.0) > 0
    assert limiter.take("b", now=0.0) == 0.0


def test_retry_after_is_whole_seconds_at_least_one() -> None:
    assert RateLimiter.retry_after(0.01) == 1
    assert RateLimiter.retry_after(99.2) == 100


def test_a_limit_needs_a_rate_and_a_burst() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)
    with pytest.raises(ValueError):
        RateLimiter(rate=1, burst=0)
