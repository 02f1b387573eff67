"""The per-hour sums: inferences and their predictions summed per hour, so a chart of weeks reads
thousands of rows, not millions.

Counting detections per class unnests every stored prediction: about 350 ms for 30 days of a
5-million-inference store, nearly all of it reading the nested predictions. The same figures
summed per hour (and model, device, class) answer in a few milliseconds, and the partial hours
at a window's two ends are added from the inferences themselves, so an answer is the same as
the full scan's. How the sums are kept current is the caches' seam (`cache/__init__.py`); here
are what they hold and the terms reading them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.store.duckdb.sql import _marks, where

HOUR = timedelta(hours=1)
# The confidence histogram the sums keep: the dashboard's; other bin counts read the inferences.
BINS = 20

# Re-make the given hours of one workspace from the inferences (`Caches` deletes them first, in
# the same transaction), bound as $ws, the span [$lo, $hi) of the hours, and $hours themselves.
_IN_HOURS = "ws = $ws AND ts >= $lo AND ts < $hi AND date_trunc('hour', ts) IN (SELECT unnest($hours::TIMESTAMP[]))"
REFRESH_HOURS = (
    f"""
    INSERT INTO class_hours
    SELECT ws, hour, model_id, device_id, p.class, count(*), count(DISTINCT key),
        count(p.confidence), coalesce(sum(p.confidence), 0),
        count(inference_time), coalesce(sum(inference_time), 0)
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, device_id, key, inference_time,
              unnest(predictions) AS p
          FROM inferences WHERE {_IN_HOURS})
    GROUP BY ALL
    """,
    f"""
    INSERT INTO inference_hours
    SELECT ws, date_trunc('hour', ts) AS hour, model_id, device_id, count(*), sum(n_predictions),
        sum(sum_confidence), count(inference_time), coalesce(sum(inference_time), 0)
    FROM inferences WHERE {_IN_HOURS}
    GROUP BY ALL
    """,
    f"""
    INSERT INTO class_bins
    SELECT ws, hour, model_id, p.class, least(floor(p.confidence * {BINS})::INTEGER, {BINS - 1}),
        count(*), sum(p.confidence)
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, unnest(predictions) AS p
          FROM inferences WHERE {_IN_HOURS})
    GROUP BY ALL
    """,
)
TABLES = ("inference_hours", "class_hours", "class_bins")


def _floor_hour(value: datetime) -> datetime:
    return value.replace(minute=0, second=0, microsecond=0)


def next_hour(hour: datetime) -> datetime:
    """The hour after, or the last instant there is for the last hour of year 9999."""
    try:
        return hour + HOUR
    except OverflowError:
        return datetime.max


def _ceil_hour(value: datetime) -> datetime:
    floor = _floor_hour(value)
    return floor if floor == value else next_hour(floor)


def window_hours(filters: Filters) -> tuple[datetime, datetime]:
    """The hours [lo, hi) (naive UTC) that hold the filters' window, partial ones included."""
    lo = _floor_hour(filters.start.replace(tzinfo=None)) if filters.start else datetime.min
    hi = _ceil_hour(filters.end.replace(tzinfo=None)) if filters.end else datetime.max
    return lo, hi


def summed_hours(filters: Filters, bucket: timedelta | None = None) -> tuple[datetime, datetime] | None:
    """The whole hours [lo, hi) (naive UTC) of the filters' window the sums can answer for, or
    None. The sums know model, device and class, not tags, metadata or a single prediction's
    confidence; a time bucket must be made of whole hours."""
    if filters.tags or filters.meta or filters.min_confidence is not None or filters.max_confidence is not None:
        return None
    if filters.start is None or filters.end is None:
        return None
    if bucket is not None and (bucket < HOUR or bucket % HOUR):
        return None
    lo, hi = _ceil_hour(filters.start.replace(tzinfo=None)), _floor_hour(filters.end.replace(tzinfo=None))
    return (lo, hi) if lo < hi else None


def edge_where(ws: int, filters: Filters, hours: tuple[datetime, datetime]) -> tuple[str, list[Any]]:
    """The terms selecting the filters' inferences (alias `i`) outside the summed hours: those of
    the window's partial first and last hours, which the sums leave to the rows."""
    clause, params = where(ws, filters, "i")
    return f"{clause} AND (i.ts < ? OR i.ts >= ?)", [*params, *hours]


def sums_where(ws: int, filters: Filters, lo: datetime, hi: datetime, *, device: bool = True) -> tuple[str, list[Any]]:
    """The terms selecting a summed table's rows of [lo, hi) in the filters."""
    terms = ["ws = ?", "hour >= ?", "hour < ?"]
    params: list[Any] = [ws, lo, hi]
    for column, values in (("model_id", filters.model_ids), ("device_id", filters.device_ids if device else ()),
                           ("class", filters.classes)):
        if values:
            terms.append(f"{column} IN ({_marks(len(values))})")
            params.extend(values)
    return " AND ".join(terms), params


def rows_per_class(ws: int, filters: Filters, hours: tuple[datetime, datetime], by: str = "NULL"
                   ) -> tuple[str, list[Any]]:
    """A query of (`by` column, class, inferences holding it) in filters without prediction
    terms: the sums' whole hours, and each partial hour's rows' distinct classes (which leave
    out predictions without a class, as the sums here do)."""
    lo, hi = hours
    held, params = sums_where(ws, filters, lo, hi)
    edges, edge_params = edge_where(ws, filters, hours)
    return (
        f"SELECT g, c, sum(n) FROM (SELECT {by} AS g, class AS c, n_inferences AS n FROM class_hours WHERE {held}"
        f" AND class IS NOT NULL UNION ALL SELECT {by}, unnest(i.classes), 1 FROM inferences i"
        f" WHERE {edges}) GROUP BY ALL",
        [*params, *edge_params],
    )
