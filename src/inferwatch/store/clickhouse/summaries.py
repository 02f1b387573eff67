"""Reads of the per-hour summaries: the aggregate projection `hour_sums` of `inferences` (schema
migration 12).

ClickHouse answers a query from a projection by itself when the query groups exactly as the
projection does, with the same expressions, and filters only on its keys. So a window is read in
two parts, as the DuckDB store reads its sums (`store/hours.py` says which hours): its whole hours
grouped per hour, model, device and task, which the engine reads from the projection's few rows a
part instead of the rows, and its partial first and last hours from the rows themselves, one row
each in the same shape. Counts and sums come out exact (floating-point sums to their last bits);
the percentiles of inference time come from the projection's time buckets (`store/sketch.py`),
within its bound.

The projection lives in every part beside its rows and is rebuilt with it by every merge, TTL
and mutation, so there is nothing to keep current here and nothing a delete can leave behind.
"""

from __future__ import annotations

from datetime import datetime

from inferwatch.query.filters import Filters
from inferwatch.store import sketch
from inferwatch.store.clickhouse.schema import TIME_BUCKETS
from inferwatch.store.clickhouse.sql import Params, where

Hours = tuple[datetime, datetime]

_HOUR = "toStartOfHour(ts)"
def row_bucket(time: str) -> str:
    """One row's time bucket (of its `time` column) in the shape of the projection's map of
    buckets to counts (empty for no time)."""
    return f"if({time} IS NULL, map(), map(assumeNotNull({sketch.time_bucket_sql(time)}), toUInt64(1)))"


def _keys(ws: int, filters: Filters, hours: Hours, p: Params) -> str:
    """The terms of the whole hours: on the projection's keys alone (workspace, model, device,
    hour), so the engine can answer from it."""
    lo, hi = hours
    keys = Filters(model_ids=filters.model_ids, device_ids=filters.device_ids)
    return f"{where(ws, keys, p)} AND {_HOUR} >= {p.time(lo)} AND {_HOUR} < {p.time(hi)}"


def summed(ws: int, filters: Filters, hours: Hours, p: Params, *, hourly: bool = True) -> str:
    """A subquery of (hour, model_id, device_id, task, n, n_preds, confidence_sum, n_timed,
    time_sum, last_ts, times) over the filters' inferences, in filters the summaries know (no
    class, tag, confidence or metadata terms): one row per hour, model, device and task of the
    whole hours (from `hour_sums`), one per inference of the partial ones. `times` maps time
    buckets to counts, which `sumMap(times)` adds up. Not `hourly`: the whole hours in one row
    per model, device and task (`hour` their first), for a read that adds the hours up anyway;
    the engine then merges the projection's sums straight into those rows, where a row per
    hour first cost twice the time for a month's time buckets (docs/performance.md)."""
    lo, hi = hours
    hour, by_hour = (f"{_HOUR} AS hour", ", hour") if hourly else (f"{p.time(lo)} AS hour", "")
    return (
        f"(SELECT {hour}, model_id, device_id, task, count() AS n, sum(n_predictions) AS n_preds,"
        " sum(sum_confidence) AS confidence_sum, count(inference_time) AS n_timed,"
        f" sum(inference_time) AS time_sum, max(ts) AS last_ts, {TIME_BUCKETS} AS times"
        f" FROM inferences WHERE {_keys(ws, filters, hours, p)}"
        f" GROUP BY ws, model_id, device_id, task{by_hour}"
        " UNION ALL SELECT ts, model_id, device_id, task, 1, n_predictions, sum_confidence,"
        f" toUInt64(inference_time IS NOT NULL), ifNull(inference_time, 0), ts, {row_bucket('inference_time')}"
        f" FROM inferences WHERE {where(ws, filters, p)} AND (ts < {p.time(lo)} OR ts >= {p.time(hi)}))"
    )
