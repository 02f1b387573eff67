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

from inferwatch.query.filters import Filters
from inferwatch.store.duckdb.sql import Params, where

HOUR = timedelta(hours=1)
# The confidence histogram the sums keep: the dashboard's; other bin counts read the inferences.
BINS = 20

# Re-make the given hours of one workspace from the inferences (`Caches` deletes them first, in
# the same transaction), bound as $ws, the span [$lo, $hi) of the hours, and $hours themselves.
IN_HOURS = ("ws = $ws AND ts >= $lo AND ts < $hi"
            " AND date_trunc('hour', ts) IN (SELECT unnest($hours::TIMESTAMP[]))")
REFRESH_HOURS = (
    f"""
    INSERT INTO class_hours
    SELECT ws, hour, model_id, device_id, p.class, count(*), count(DISTINCT key),
        count(p.confidence), coalesce(sum(p.confidence), 0),
        count(inference_time), coalesce(sum(inference_time), 0)
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, device_id, key, inference_time,
              unnest(predictions) AS p
          FROM inferences WHERE {IN_HOURS})
    GROUP BY ALL
    """,
    f"""
    INSERT INTO inference_hours
    SELECT ws, date_trunc('hour', ts) AS hour, model_id, device_id, count(*), sum(n_predictions),
        sum(sum_confidence), count(inference_time), coalesce(sum(inference_time), 0)
    FROM inferences WHERE {IN_HOURS}
    GROUP BY ALL
    """,
    f"""
    INSERT INTO class_bins
    SELECT ws, hour, model_id, p.class, least(floor(p.confidence * {BINS})::INTEGER, {BINS - 1}),
        count(*), sum(p.confidence)
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, unnest(predictions) AS p
          FROM inferences WHERE {IN_HOURS})
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


def edge_where(ws: int, filters: Filters, hours: tuple[datetime, datetime], p: Params) -> str:
    """The terms selecting the filters' inferences (alias `i`) outside the summed hours: those of
    the window's partial first and last hours, which the sums leave to the rows."""
    lo, hi = hours
    return f"{where(ws, filters, p, 'i')} AND (i.ts < {p.add(lo)} OR i.ts >= {p.add(hi)})"


def sums_where(ws: int, filters: Filters, hours: tuple[datetime, datetime], p: Params, *, device: bool = True) -> str:
    """The terms selecting a summed table's rows of the whole `hours` in the filters."""
    lo, hi = hours
    terms = [f"ws = {p.add(ws)}", f"hour >= {p.add(lo)}", f"hour < {p.add(hi)}"]
    for column, values in (("model_id", filters.model_ids), ("device_id", filters.device_ids if device else ()),
                           ("class", filters.classes)):
        if values:
            terms.append(f"{column} IN ({p.each(values)})")
    return " AND ".join(terms)


def rows_per_class(ws: int, filters: Filters, hours: tuple[datetime, datetime], p: Params, by: str = "NULL") -> str:
    """A query of (`by` column, class, inferences holding it) in filters without prediction
    terms: the sums' whole hours, and each partial hour's rows' distinct classes (which leave
    out predictions without a class, as the sums here do)."""
    return (
        f"SELECT g, c, sum(n) FROM (SELECT {by} AS g, class AS c, n_inferences AS n FROM class_hours"
        f" WHERE {sums_where(ws, filters, hours, p)} AND class IS NOT NULL"
        f" UNION ALL SELECT {by}, unnest(i.classes), 1 FROM inferences i WHERE {edge_where(ws, filters, hours, p)})"
        " GROUP BY ALL"
    )
