"""The per-hour sums: inferences and their predictions summed per hour, so a chart of weeks reads
thousands of rows, not millions.

Counting detections per class unnests every stored prediction: about 350 ms for 30 days of a
5-million-inference store, nearly all of it reading the nested predictions. The same figures
summed per hour (and model, device, class) answer in a few milliseconds, and the partial hours
at a window's two ends are added from the inferences themselves, so an answer is the same as
the full scan's. Percentiles cannot be summed, but counts in fixed buckets can: the times and
confidences are kept in those of `store/sketch.py`, and a percentile from them is within its
stated bound of the scan's. How the sums are kept current is the caches' seam (`cache/__init__.py`); here
are what they hold and the terms reading them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from inferwatch.query.filters import Filters
from inferwatch.store import sketch
from inferwatch.store.duckdb.sql import Params, where


def coarse_bin(confidence: str, bins: int, *, fine: bool = False) -> str | None:
    """The SQL of `confidence`'s bin of `bins` as a run of the sketch's fine bins (`fine`: the
    column is already a fine bin), or None when `bins` does not divide them. The rows and the
    sums then bin alike, to the last double."""
    if sketch.CONFIDENCE_BINS % bins:
        return None
    fine_bin = confidence if fine else sketch.confidence_bin_sql(confidence)
    return f"CAST(floor(({fine_bin}) / {sketch.CONFIDENCE_BINS // bins}) AS INTEGER)"


# Re-make the given hours of one workspace from the inferences (`Caches` deletes them first, in
# the same transaction), bound as $ws, the span [$lo, $hi) of the hours, and $hours themselves.
IN_HOURS = ("ws = $ws AND ts >= $lo AND ts < $hi"
            " AND date_trunc('hour', ts) IN (SELECT unnest($hours::TIMESTAMP[]))")
# The inference server's version an inference names in `extra`, parsed only where it is named:
# parsing the JSON of every row was most of the time of a read.
VERSION = "json_extract_string(extra, '$.inference_server_version')"
HAS_VERSION = "contains(extra, '\"inference_server_version\"')"
_DAYS = "SELECT DISTINCT date_trunc('day', unnest($hours::TIMESTAMP[]))"
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
    SELECT ws, date_trunc('hour', ts) AS hour, model_id, device_id, task, count(*), sum(n_predictions),
        sum(sum_confidence), count(inference_time), coalesce(sum(inference_time), 0), max(ts),
        min(received_at), max(received_at)
    FROM inferences WHERE {IN_HOURS}
    GROUP BY ALL
    """,
    f"""
    INSERT INTO time_hours
    SELECT ws, hour, model_id, device_id, bucket, count(*)
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, device_id,
              {sketch.time_bucket_sql('inference_time')} AS bucket
          FROM inferences WHERE {IN_HOURS} AND inference_time IS NOT NULL)
    GROUP BY ALL
    """,
    f"""
    INSERT INTO class_bins
    SELECT ws, hour, model_id, p.class, {sketch.confidence_bin_sql('p.confidence')}, count(*), sum(p.confidence)
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, unnest(predictions) AS p
          FROM inferences WHERE {IN_HOURS})
    GROUP BY ALL
    """,
    f"""
    INSERT INTO version_hours
    SELECT DISTINCT ws, hour, model_id, c, v
    FROM (SELECT ws, date_trunc('hour', ts) AS hour, model_id, unnest(classes) AS c, {VERSION} AS v
          FROM inferences WHERE {IN_HOURS} AND {HAS_VERSION})
    WHERE v IS NOT NULL
    """,
    # The days holding the hours, added up again from their hours' bins: a day's row is made
    # again whenever one of its hours is, and a read takes a day's row only when its window
    # holds the whole day, whose every hour it has just made current (`bin_sums`).
    f"DELETE FROM class_bin_days WHERE ws = $ws AND day >= date_trunc('day', $lo::TIMESTAMP) AND day < $hi"
    f" AND day IN ({_DAYS})",
    f"""
    INSERT INTO class_bin_days
    SELECT ws, date_trunc('day', hour) AS day, model_id, class, bin, sum(n), sum(confidence_sum)
    FROM class_bins WHERE ws = $ws AND hour >= date_trunc('day', $lo::TIMESTAMP)
        AND date_trunc('day', hour) < $hi AND date_trunc('day', hour) IN ({_DAYS})
    GROUP BY ALL
    """,
)
# The tables of whole hours, which `Caches` deletes by hour (the days' are re-made above).
TABLES = ("inference_hours", "class_hours", "class_bins", "time_hours", "version_hours")


def edge_where(ws: int, filters: Filters, hours: tuple[datetime, datetime], p: Params) -> str:
    """The terms selecting the filters' inferences (alias `i`) outside the summed hours: those of
    the window's partial first and last hours, which the sums leave to the rows."""
    lo, hi = hours
    return f"{where(ws, filters, p, 'i')} AND (i.ts < {p.add(lo)} OR i.ts >= {p.add(hi)})"


def sums_where(ws: int, filters: Filters, hours: tuple[datetime, datetime], p: Params, *, device: bool = True,
               time: str = "hour") -> str:
    """The terms selecting a summed table's rows of the whole `hours` in the filters (its
    `time` column: the hour, or the day of a table of days)."""
    lo, hi = hours
    terms = [f"ws = {p.add(ws)}", f"{time} >= {p.add(lo)}", f"{time} < {p.add(hi)}"]
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


def time_buckets(ws: int, filters: Filters, hours: tuple[datetime, datetime], p: Params, by: str = "NULL") -> str:
    """A query of (`by` column, time bucket, inferences) in filters without class terms (the
    bucketed times know none): the sums' whole hours, and the partial hours' rows bucketed alike
    (`sketch.time_bucket_sql`), for `sketch.quantile`."""
    assert not filters.classes, "the time buckets are per model and device, not class"
    return (
        f"SELECT g, bucket, sum(n) FROM (SELECT {by} AS g, bucket, n FROM time_hours"
        f" WHERE {sums_where(ws, filters, hours, p)}"
        f" UNION ALL SELECT {by}, {sketch.time_bucket_sql('i.inference_time')}, 1 FROM inferences i"
        f" WHERE {edge_where(ws, filters, hours, p)} AND i.inference_time IS NOT NULL)"
        " GROUP BY ALL"
    )


def days_within(hours: tuple[datetime, datetime]) -> tuple[datetime, datetime] | None:
    """The whole days [lo, hi) within the whole hours, or None."""
    lo, hi = hours
    try:
        first = lo if lo.hour == 0 else lo.replace(hour=0) + timedelta(days=1)
    except OverflowError:  # the last day there is
        return None
    last = hi.replace(hour=0, minute=0, second=0, microsecond=0)
    return (first, last) if first < last else None


def bin_sums(ws: int, filters: Filters, hours: tuple[datetime, datetime], p: Params) -> str:
    """A subquery of the confidence bins (model_id, class, bin, n, confidence_sum) of the whole
    `hours` in filters without device terms: the whole days among them from `class_bin_days`
    (a month is 30 days' rows, not 720 hours'), the hours before and after from `class_bins`."""
    days = days_within(hours)
    if days is None:
        return ("(SELECT model_id, class, bin, n, confidence_sum FROM class_bins"
                f" WHERE {sums_where(ws, filters, hours, p, device=False)})")
    return (
        "(SELECT model_id, class, bin, n, confidence_sum FROM class_bin_days"
        f" WHERE {sums_where(ws, filters, days, p, device=False, time='day')}"
        " UNION ALL SELECT model_id, class, bin, n, confidence_sum FROM class_bins"
        f" WHERE {sums_where(ws, filters, (hours[0], days[0]), p, device=False)}"
        " UNION ALL SELECT model_id, class, bin, n, confidence_sum FROM class_bins"
        f" WHERE {sums_where(ws, filters, (days[1], hours[1]), p, device=False)})"
    )


def confidence_bins(ws: int, filters: Filters, hours: tuple[datetime, datetime], p: Params) -> str:
    """A query of (model, class, confidence bin, predictions) of the predictions that have a
    confidence, in filters of models only (the bins know neither device nor class terms): the
    sums' whole hours and the partial hours' predictions binned alike
    (`sketch.confidence_bin_sql`), for `sketch.confidence_quantile`."""
    assert not (filters.classes or filters.device_ids), "the confidence bins are per model and class"
    return (
        "SELECT model_id, class, bin, sum(n) FROM (SELECT model_id, class, bin, n"
        f" FROM {bin_sums(ws, filters, hours, p)}"
        f" UNION ALL SELECT model_id, p.class, {sketch.confidence_bin_sql('p.confidence')}, 1"
        " FROM (SELECT model_id, unnest(i.predictions) AS p FROM inferences i"
        f" WHERE {edge_where(ws, filters, hours, p)}))"
        " WHERE bin IS NOT NULL GROUP BY ALL"
    )


def versions(ws: int, filters: Filters, hours: tuple[datetime, datetime] | None, p: Params) -> str:
    """A query of ((model, class), sorted distinct server versions) of the inferences holding
    the class, in filters without class terms: from `version_hours` for the whole `hours`, from
    the rows for the rest (all of them without `hours`)."""
    rows = f"SELECT model_id, unnest(classes) AS c, {VERSION} AS v FROM inferences i"
    if hours is None:
        found = f"{rows} WHERE {where(ws, filters, p, 'i')} AND {HAS_VERSION}"
    else:
        found = (f"SELECT model_id, class, version FROM version_hours WHERE {sums_where(ws, filters, hours, p)}"
                 f" UNION ALL {rows} WHERE {edge_where(ws, filters, hours, p)} AND {HAS_VERSION}")
    return (f"SELECT (model_id, c), list_sort(list_distinct(list(v))) FROM ({found}) AS f(model_id, c, v)"
            " WHERE v IS NOT NULL GROUP BY ALL")
