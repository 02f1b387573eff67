"""Series bucket choice: automatic by range, or named and bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inferwatch.errors import InvalidRequest
from inferwatch.query.buckets import BUCKETS, MAX_POINTS, TARGET_POINTS, choose_bucket


@pytest.mark.parametrize(("span", "name"), [
    (timedelta(0), "1m"),
    (timedelta(minutes=200), "1m"),
    (timedelta(minutes=201), "5m"),
    (timedelta(hours=24), "15m"),
    (timedelta(hours=50), "15m"),
    (timedelta(hours=51), "1h"),
    (timedelta(days=8), "1h"),
    (timedelta(days=9), "6h"),
    (timedelta(days=50), "6h"),
    (timedelta(days=51), "1d"),
    (timedelta(days=4000), "1d"),  # past the target, the largest bucket still answers
])
def test_auto(span: timedelta, name: str) -> None:
    assert choose_bucket(None, span) == (name, BUCKETS[name])
    assert choose_bucket("auto", span) == (name, BUCKETS[name])


def test_auto_never_exceeds_the_target_while_a_bucket_can_meet_it() -> None:
    for minutes in range(1, 200 * 24 * 60, 997):
        span = timedelta(minutes=minutes)
        _, size = choose_bucket(None, span)
        assert span / size <= TARGET_POINTS


@pytest.mark.parametrize("name", list(BUCKETS))
def test_named_buckets(name: str) -> None:
    assert choose_bucket(name, timedelta(hours=1)) == (name, BUCKETS[name])
    assert choose_bucket(name, BUCKETS[name] * MAX_POINTS) == (name, BUCKETS[name])


@pytest.mark.parametrize(("name", "span"), [
    ("2m", timedelta(hours=1)),
    ("1M", timedelta(hours=1)),
    ("", timedelta(hours=1)),
    ("1m", timedelta(minutes=MAX_POINTS + 1)),
    ("1h", timedelta(hours=MAX_POINTS + 1)),
])
def test_refused(name: str, span: timedelta) -> None:
    with pytest.raises(InvalidRequest):
        choose_bucket(name, span)
