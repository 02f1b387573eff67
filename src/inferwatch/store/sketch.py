"""Mergeable summaries of a column's distribution, the same for both stores.

A dashboard's percentile over a month cannot be merged from per-hour percentiles; it can be
merged from per-hour counts of values in fixed buckets. Both stores keep the same buckets (the
SQL expressions below, one per dialect where they differ) and answer a quantile over the merged
buckets with `quantile` / `confidence_quantile` here, so the two stores agree bucket for bucket.

- Inference time: logarithmic buckets of relative error `ALPHA`. A time t > 0 falls in bucket
  k = ceil(ln(t) / ln(GAMMA)), which holds (GAMMA**(k-1), GAMMA**k]; its value
  2 * GAMMA**k / (GAMMA + 1) is within ALPHA (relative) of every time in it. Times <= 0 share
  bucket `ZERO_BUCKET`, whose value is 0; a NULL time is in no bucket.
- Confidence: 1000 bins of width 0.001, bin = least(floor(confidence * 1000), 999); a bin's value
  is its middle, within 0.0005 of every confidence in [0, 1] in it.

The quantile: the stores' exact figure is DuckDB's `quantile_cont` (`median` is its q = 0.5): at
h = (n - 1) * q over the n sorted values, x[floor(h)] + (x[ceil(h)] - x[floor(h)]) * (h - floor(h)).
Here the same is taken over the buckets: the buckets holding positions floor(h) and ceil(h) give
their values in place of x[floor(h)] and x[ceil(h)]. Each stands within the bucket's error of the
value it replaces, and the interpolation is a weighted mean of the two, so the answer is within
ALPHA (relative) of `quantile_cont` for times (within 0.0005 absolute for confidences in [0, 1]).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
LN_GAMMA = math.log(GAMMA)
# The bucket of times <= 0: below that of any positive double (the smallest is about -37,000).
ZERO_BUCKET = -1_000_000

CONFIDENCE_BINS = 1000
# The bound of a confidence quantile, absolute, for confidences in [0, 1].
CONFIDENCE_ERROR = 0.5 / CONFIDENCE_BINS


def time_bucket_sql(column: str) -> str:
    """The SQL of the time bucket of `column` (NULL for NULL), for DuckDB and ClickHouse alike:
    both have ln and ceil, and both read the constant below as the same double."""
    return (f"CASE WHEN {column} > 0 THEN CAST(ceil(ln({column}) / {LN_GAMMA!r}) AS BIGINT)"
            f" WHEN {column} <= 0 THEN {ZERO_BUCKET} END")


def confidence_bin_sql(column: str) -> str:
    """The SQL of the confidence bin of `column` (NULL for NULL), for DuckDB and ClickHouse.
    The CASE is needed: DuckDB's least() passes over a NULL, which would put it in the top bin."""
    return (f"CASE WHEN {column} IS NOT NULL THEN"
            f" CAST(least(floor({column} * {CONFIDENCE_BINS}), {CONFIDENCE_BINS - 1}) AS INTEGER) END")


def time_bucket(t: float) -> int:
    """The bucket of one time, as `time_bucket_sql` computes it."""
    return math.ceil(math.log(t) / LN_GAMMA) if t > 0 else ZERO_BUCKET


def confidence_bin(c: float) -> int:
    """The bin of one confidence, as `confidence_bin_sql` computes it."""
    return min(math.floor(c * CONFIDENCE_BINS), CONFIDENCE_BINS - 1)


def bucket_value(k: int) -> float:
    """The value a time bucket answers: within ALPHA of every time in it."""
    if k <= ZERO_BUCKET:
        return 0.0
    return 2 * GAMMA**k / (GAMMA + 1)


def bin_value(b: int) -> float:
    """The value a confidence bin answers: its middle."""
    return (b + 0.5) / CONFIDENCE_BINS


def _quantile(buckets: Iterable[tuple[int, int]], q: float, value: Callable[[int], float]) -> float | None:
    """`quantile_cont` over merged (bucket, count) pairs, each bucket answering `value(k)`.
    Pairs may repeat a bucket (one per hour, say) and come in any order; counts <= 0 add none."""
    merged: dict[int, int] = {}
    for k, n in buckets:
        if n > 0:
            merged[k] = merged.get(k, 0) + n
    total = sum(merged.values())
    if total == 0:
        return None
    h = (total - 1) * q
    lo_at, hi_at = math.floor(h), math.ceil(h)
    lo: float | None = None
    hi: float | None = None
    seen = 0
    for k in sorted(merged):
        seen += merged[k]
        if lo is None and lo_at < seen:
            lo = value(k)
        if hi_at < seen:
            hi = value(k)
            break
    assert lo is not None and hi is not None
    return lo + (hi - lo) * (h - lo_at)


def quantile(buckets: Iterable[tuple[int, int]], q: float) -> float | None:
    """The q-quantile of times from their (bucket, count) pairs, within ALPHA (relative) of
    `quantile_cont` of the times; None when they count none."""
    return _quantile(buckets, q, bucket_value)


def confidence_quantile(bins: Iterable[tuple[int, int]], q: float) -> float | None:
    """The q-quantile of confidences from their (bin, count) pairs, within CONFIDENCE_ERROR of
    `quantile_cont` of confidences in [0, 1]; None when they count none."""
    return _quantile(bins, q, bin_value)
