"""Measured accuracy from the metadata copies summed per hour (`meta_verdict_hours`) and day
(`meta_verdict_days`).

Measured accuracy joined each labelled inference's copy to its pass/fail copy and its group's:
at 10 million inferences, 2 million copies a month, 400 to 750 ms a call. What the figures
need of one labelled inference is a handful of small values: its label, the model, its top
class, whether its classes hold the label, whether it found anything at all, its top
confidence's bin. Summed per hour over those (and the same per value of each other field of
the inference, for the accuracy per group), a month of one model's labels was still about
120,000 rows at 10 million inferences; summed per day too, about 12,000, which a window
of whole days at a bucket of days reads (docs/performance.md).

The sums know the raw label, not the setting, so they answer only where the setting does not
need more: no confidence threshold (that reads the predictions), the label map sending values
to themselves or to the "no detection" label (then "the classes hold the expected class" is
"they hold the value"), the calibration in `BINS` bins, the label a field rather than operator
feedback. Other settings count the copies (`store/duckdb/performance.py`).

Numbers are kept out of the sums (a numeric field's values are nearly all distinct): copies of
a numeric value are read from the copies, as are those of the window's partial first and last
hours. Every count is the plain scan's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from inferwatch.query.filters import Filters
from inferwatch.query.performance import DEFAULT_BINS, GroundTruth, is_feedback
from inferwatch.store.duckdb.cache.sums import days_within
from inferwatch.store.duckdb.sql import Params, where

# The calibration's bins the sums hold: the API's default.
BINS = DEFAULT_BINS

TABLE = "meta_verdict_hours"

# The figures of one copy (alias `f` of `metadata_facts`) as the sums hold them; the bin the
# same expression as the scan's (`store/duckdb/performance.py`), to the last double.
_FOUND = "list_contains(f.classes, f.field_value)"
_QUIET = "coalesce(f.max_confidence < 0, true)"
_SEVERAL = "len(f.classes) > 1"
_LONE = "CASE WHEN len(f.classes) = 1 THEN f.classes[1] END"
# (`least` passes over a NULL: no confidence, no bin.)
_BIN = f"CASE WHEN f.max_confidence IS NOT NULL THEN least(floor(f.max_confidence * {BINS})::INTEGER, {BINS} - 1) END"

# Re-makes the sums of the given hours from their copies, bound like `meta_copies.SUMMARIZE_HOURS`
# and run after the copies are made. In field order, so a read of one field skips the others'
# row groups.
SUMMARIZE = f"""
INSERT INTO {TABLE}
WITH c AS MATERIALIZED (
    SELECT ws, hour, key, field_name, field_value, model_id, top_class, {_FOUND} AS found, {_QUIET} AS quiet,
        {_SEVERAL} AS several, {_LONE} AS lone, {_BIN} AS bin, max_confidence
    FROM metadata_facts f
    WHERE ws = $ws AND ts >= $lo AND ts < $hi AND hour IN (SELECT unnest($hours::TIMESTAMP[]))
        AND field_number IS NULL
)
SELECT * FROM (
    SELECT ws, hour, field_name, field_value, model_id, top_class, found, quiet, several, lone, bin,
        NULL::VARCHAR AS group_field, NULL::VARCHAR AS group_value, count(*) AS n, sum(max_confidence)
    FROM c GROUP BY ALL
    UNION ALL
    SELECT l.ws, l.hour, l.field_name, l.field_value, l.model_id, l.top_class, l.found, l.quiet, NULL, NULL, NULL,
        g.field_name, g.field_value, count(*), NULL
    FROM c l JOIN c g ON g.key = l.key AND g.field_name <> l.field_name
    GROUP BY ALL
)
ORDER BY field_name, group_field NULLS FIRST, hour
"""

DAYS = "meta_verdict_days"
_COLUMNS = ("field_name, field_value, model_id, top_class, found, quiet, several, lone, bin, group_field,"
            " group_value")
# The days holding the summed hours, added up again from their hours, as the sums' confidence
# bins are (`sums.REFRESH_HOURS`): a read takes a day's row only when its window holds the
# whole day, whose every hour it has just made current.
_DAYS_OF = "SELECT DISTINCT date_trunc('day', unnest($hours::TIMESTAMP[]))"
SUMMARIZE_DAYS = (
    f"DELETE FROM {DAYS} WHERE ws = $ws AND day >= date_trunc('day', $lo::TIMESTAMP) AND day < $hi"
    f" AND day IN ({_DAYS_OF})",
    f"""
    INSERT INTO {DAYS}
    SELECT ws, date_trunc('day', hour) AS day, {_COLUMNS}, sum(n), sum(confidence_sum)
    FROM {TABLE} WHERE ws = $ws AND hour >= date_trunc('day', $lo::TIMESTAMP)
        AND date_trunc('day', hour) < $hi AND date_trunc('day', hour) IN ({_DAYS_OF})
    GROUP BY ALL
    ORDER BY field_name, group_field NULLS FIRST, day
    """,
)


def summed_window(filters: Filters, setting: GroundTruth, bins: int, group_field: str | None,
                  hours: tuple[datetime, datetime] | None) -> tuple[datetime, datetime] | None:
    """`hours`, the window's whole hours the caches hold (`Caches.summed_hours`), if the sums
    answer this setting and these filters; else None. The sums know no device or class."""
    if hours is None or setting.confidence_threshold > 0 or is_feedback(setting) or bins != BINS:
        return None
    if any(v not in (k, setting.no_detection_label) for k, v in setting.label_map.items()):
        return None
    if filters.device_ids or filters.classes or group_field == setting.label_field:
        return None
    return hours


def numbered(con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, fields: list[str],
             hours: tuple[datetime, datetime]) -> set[str]:
    """Which of the fields have a copy holding a number in the whole `hours`: the copies' row
    groups of a text field know they hold none, so this reads next to nothing then."""
    p = Params()
    found = con.execute(f"SELECT DISTINCT g.field_name FROM metadata_facts g WHERE g.field_name IN ({p.each(fields)})"
                        f" AND {where(ws, filters, p, 'g')} AND g.ts >= {p.add(hours[0])} AND g.ts < {p.add(hours[1])}"
                        " AND g.field_number IS NOT NULL", p).fetchall()
    return {name for (name,) in found}


def counted(ws: int, filters: Filters, setting: GroundTruth, hours: tuple[datetime, datetime], bucket: timedelta,
            group_field: str | None, expected: str, p: Params, numeric: set[str] | None = None) -> str:
    """The query `performance._counted` makes of the copies, from the sums of the whole `hours`:
    the same columns and GROUPING SETS, each count a sum of the sums' `n`. `expected` is the
    expected class of the label in column `field_value` (`performance._expected`). `numeric`:
    the fields whose copies of the whole hours hold numbers (`numbered`), None: any may; a join
    of the copies with numbers is left out when its side has none, where it still read the other
    side's copies of the whole window (300 ms of a month at 100 million inferences)."""
    lo, hi = hours
    none = p.add(setting.no_detection_label)
    names = [setting.label_field] + ([setting.pass_field] if setting.pass_field else [])

    # Whole days from the days' sums when the buckets are whole days (which start at midnight).
    days = days_within(hours) if bucket % timedelta(days=1) == timedelta(0) else None

    def summed(field: str, group: str | None, columns: str) -> str:
        """A subquery of the hour (a day's first for a day's row) and `columns` of the sums of
        `hours`, the whole days among them per day."""

        def terms(table: str, time: str, span: tuple[datetime, datetime]) -> str:
            found = [f"ws = {p.add(ws)}", f"{time} >= {p.add(span[0])}", f"{time} < {p.add(span[1])}",
                     f"field_name = {p.add(field)}"]
            if filters.model_ids:
                found.append(f"model_id IN ({p.each(filters.model_ids)})")
            found.append("group_field IS NULL" if group is None else f"group_field = {p.add(group)}")
            return f"SELECT {time} AS hour, {columns} FROM {table} WHERE {' AND '.join(found)}"

        if days is None:
            return f"({terms(TABLE, 'hour', hours)})"
        return (f"({terms(DAYS, 'day', days)}"
                f" UNION ALL {terms(TABLE, 'hour', (lo, days[0]))} UNION ALL {terms(TABLE, 'hour', (days[1], hi))})")

    def copies(alias: str, field: str) -> str:
        return f"{alias}.field_name = {p.add(field)} AND {where(ws, filters, p, alias)}"

    # The copies the sums leave out, in three disjoint parts each of plain terms, so that each
    # scan skips the row groups outside its time range or without numbers: the partial first
    # hour, the partial last hour, the numbers of the whole hours.
    start, stop = p.add(lo), p.add(hi)

    def outside(alias: str) -> tuple[str, str, str]:
        return (f"{alias}.ts < {start}", f"{alias}.ts >= {stop}",
                f"{inside(alias)} AND {alias}.field_number IS NOT NULL")

    def inside(alias: str) -> str:
        return f"{alias}.ts >= {start} AND {alias}.ts < {stop}"

    columns = "field_name, field_value, top_class, found, quiet, several, lone, bin, n, confidence_sum"
    fields = " UNION ALL ".join(
        [f"SELECT * FROM {summed(name, None, columns)}" for name in dict.fromkeys(names)]
        + [f"SELECT f.hour, f.field_name, f.field_value, f.top_class, {_FOUND}, {_QUIET}, {_SEVERAL}, {_LONE}, {_BIN},"
           f" 1, f.max_confidence FROM metadata_facts f WHERE {copies('f', name)} AND {part}"
           for name in dict.fromkeys(names) for part in outside("f")])
    label = p.add(setting.label_field)
    labelled = (f"SELECT hour, field_value, top_class, found, quiet, bin, n, confidence_sum, NULL::VARCHAR AS grp"
                f" FROM fields WHERE field_name = {label}")
    if group_field:
        # Per value of the group field: its sums, and the copies of partial hours or numbers
        # joined, each part's terms on both sides (the same inference: the same time), so that
        # both scans skip what the part leaves out.
        def pair(terms: str) -> str:
            return (f"SELECT f.hour, f.field_value, f.top_class, {_FOUND}, {_QUIET}, NULL, 1, NULL, g.field_value"
                    f" FROM metadata_facts f JOIN metadata_facts g ON g.key = f.key WHERE {terms}")

        def with_numbers(field: str) -> bool:
            return numeric is None or field in numeric

        # Each part of the label's copies with the group's copies of the same part.
        parts = list(zip(outside("f"), (*outside("g")[:2], inside("g")), strict=True))
        if not with_numbers(setting.label_field):
            parts.pop()  # the label's numbers of the whole hours
        labelled += (
            " UNION ALL SELECT * FROM "
            + summed(setting.label_field, group_field,
                     "field_value, top_class, found, quiet, NULL, n, NULL, group_value")
            + "".join(" UNION ALL " + pair(f"{copies('f', setting.label_field)} AND {part}"
                                           f" AND {copies('g', group_field)} AND {other}")
                      for part, other in parts)
            + (" UNION ALL " + pair(f"{copies('f', setting.label_field)} AND {inside('f')} AND f.field_number IS NULL"
                                    f" AND {copies('g', group_field)} AND {outside('g')[2]}")
               if with_numbers(group_field) else ""))
    verdicts = (f"SELECT *, CASE WHEN expected = {none} THEN quiet ELSE found END AS correct"
                f" FROM (SELECT *, {expected} AS expected FROM ({labelled}))")
    inspected = ""
    if setting.pass_field:
        fails = p.add([v.lower() for v in setting.fail_values])
        inspected = (" UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, several OR coalesce(lone <> "
                     f"{none}, false), list_contains({fails}::VARCHAR[], lower(field_value)), n, NULL, NULL"
                     f" FROM fields WHERE field_name = {p.add(setting.pass_field)}")
    return f"""
WITH fields AS MATERIALIZED ({fields}),
verdicts AS ({verdicts}),
counted AS (
    SELECT CASE WHEN grp IS NULL THEN expected END AS expected,
        CASE WHEN grp IS NULL THEN CASE WHEN correct THEN expected WHEN NOT quiet THEN top_class
            ELSE {none} END END AS predicted,
        CASE WHEN grp IS NULL THEN time_bucket({p.add(bucket)}::INTERVAL, hour, TIMESTAMP '1970-01-01') END
            AS bucket,
        grp, bin, NULL::BOOLEAN AS flagged, NULL::BOOLEAN AS failed, n, correct, confidence_sum
    FROM verdicts{inspected}
)
SELECT GROUPING(expected, predicted), GROUPING(bucket), GROUPING(grp), GROUPING(bin), GROUPING(flagged, failed),
    expected, predicted, bucket, grp, bin, flagged, failed, sum(n), coalesce(sum(n) FILTER (WHERE correct), 0),
    sum(confidence_sum) / sum(n)
FROM counted
GROUP BY GROUPING SETS ((expected, predicted), (bucket), (grp), (bin), (flagged, failed))
"""
