"""The shared sketches (`store/sketch.py`): their quantiles stand within the stated bound of
DuckDB's exact `quantile_cont`, merged from parts in any order, and the SQL buckets are the
Python ones."""

from __future__ import annotations

import random

import duckdb
import pytest

from inferwatch.store import sketch

_DB = duckdb.connect()
QS = (0.0, 0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0)


def _exact(values: list[float], q: float) -> float:
    row = _DB.execute(f"SELECT quantile_cont(v, {q}) FROM (SELECT unnest($v::DOUBLE[]) AS v)",
                      {"v": values}).fetchone()
    assert row is not None
    return float(row[0])


def _parts(values: list[float], bucket: object, rng: random.Random) -> list[tuple[int, int]]:
    """(bucket, count) pairs of the values cut into a few parts, as hours would hold them,
    shuffled: a merge must not depend on their order."""
    pairs: list[tuple[int, int]] = []
    for start in range(0, len(values), 97):
        counts: dict[int, int] = {}
        for v in values[start:start + 97]:
            k = bucket(v)  # type: ignore[operator]
            counts[k] = counts.get(k, 0) + 1
        pairs += counts.items()
    rng.shuffle(pairs)
    return pairs


def _times(rng: random.Random, n: int, shape: str) -> list[float]:
    if shape == "lognormal":
        return [rng.lognormvariate(-3, 1.2) for _ in range(n)]
    if shape == "with zeros":
        return [0.0 if rng.random() < 0.2 else rng.uniform(0.001, 2) for _ in range(n)]
    if shape == "few values":
        return [rng.choice((0.0125, 0.05, 0.4, 3.0)) for _ in range(n)]
    return [rng.expovariate(40) for _ in range(n)]


@pytest.mark.parametrize("shape", ["lognormal", "with zeros", "few values", "exponential"])
@pytest.mark.parametrize("n", [1, 2, 7, 1000, 5003])
def test_time_quantile_within_alpha_of_quantile_cont(shape: str, n: int) -> None:
    rng = random.Random(f"{shape}{n}")
    times = _times(rng, n, shape)
    pairs = _parts(times, sketch.time_bucket, rng)
    for q in QS:
        exact, approx = _exact(times, q), sketch.quantile(pairs, q)
        assert approx is not None
        assert abs(approx - exact) <= sketch.ALPHA * abs(exact) * (1 + 1e-9), (q, exact, approx)


@pytest.mark.parametrize("n", [1, 2, 10, 1001, 4000])
@pytest.mark.parametrize("shape", ["uniform", "high", "ties"])
def test_confidence_quantile_within_half_a_bin(n: int, shape: str) -> None:
    rng = random.Random(f"{shape}{n}")
    confidences = [
        rng.random() if shape == "uniform" else
        rng.betavariate(8, 1) if shape == "high" else rng.choice((0.0, 0.5, 0.999, 0.25))
        for _ in range(n)]
    pairs = _parts(confidences, sketch.confidence_bin, rng)
    for q in QS:
        exact, approx = _exact(confidences, q), sketch.confidence_quantile(pairs, q)
        assert approx is not None
        assert abs(approx - exact) <= sketch.CONFIDENCE_ERROR + 1e-12, (q, exact, approx)


def test_a_bucket_value_is_within_alpha_of_both_its_ends() -> None:
    for k in (-5000, -300, -1, 0, 1, 17, 400, 5000):
        top, bottom = sketch.GAMMA**k, sketch.GAMMA ** (k - 1)
        value = sketch.bucket_value(k)
        assert abs(value - top) <= sketch.ALPHA * top * (1 + 1e-9)
        assert abs(value - bottom) <= sketch.ALPHA * bottom * (1 + 1e-9)
    assert sketch.bucket_value(sketch.ZERO_BUCKET) == 0.0


def test_nothing_counted_is_no_quantile() -> None:
    assert sketch.quantile([], 0.5) is None
    assert sketch.quantile([(3, 0)], 0.5) is None
    assert sketch.confidence_quantile([], 0.5) is None


def test_the_sql_buckets_are_the_python_ones() -> None:
    rng = random.Random(7)
    times = [0.0, -1.0, 1.0, sketch.GAMMA, sketch.GAMMA**2, 5e-324, 1e300, 0.05]
    times += [rng.lognormvariate(-3, 2) for _ in range(5000)]
    rows = _DB.execute(f"SELECT v, {sketch.time_bucket_sql('v')} FROM (SELECT unnest($v::DOUBLE[]) AS v)",
                       {"v": times}).fetchall()
    assert all(k == sketch.time_bucket(v) for v, k in rows)
    assert _DB.execute(f"SELECT {sketch.time_bucket_sql('NULL::DOUBLE')}").fetchone() == (None,)
    confidences = [0.0, 0.001, 0.5, 0.999, 0.9995, 1.0, 0.35, 0.07] + [rng.random() for _ in range(5000)]
    rows = _DB.execute(f"SELECT v, {sketch.confidence_bin_sql('v')} FROM (SELECT unnest($v::DOUBLE[]) AS v)",
                       {"v": confidences}).fetchall()
    assert all(b == sketch.confidence_bin(v) for v, b in rows)
    assert _DB.execute(f"SELECT {sketch.confidence_bin_sql('NULL::DOUBLE')}").fetchone() == (None,)
