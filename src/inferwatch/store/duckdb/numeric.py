"""A numeric metadata field's figures (count, average, least, greatest) per group and time
bucket on DuckDB: the twin of `store/clickhouse/numeric.py`, query for query.

The plain answer is one pass joining the filters' inferences to the field's numbers (and, to
group by another field, to that field's values): about a second of CPU for a month of 5 million
inferences, most of it reading the metadata table. The copies' cache (`cache/meta_copies.py`)
answers the same without it: the field's copies carry each number beside its inference's
columns (grouped by a field, that field's copies are joined on the inference key), and counts,
sums, least and greatest merge across hours, so they are also kept per hour, model and device,
alone and per value of every field beside the number in the hour (`meta_number_hours`). A
window's whole hours read those, the rest of it the copies; the answer is the scan's.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb

from inferwatch.query.filters import Filters
from inferwatch.store import rows as answer
from inferwatch.store.base import NumericPoint
from inferwatch.store.duckdb.cache import Caches
from inferwatch.store.duckdb.cache.sums import sums_where
from inferwatch.store.duckdb.sql import Params, where
from inferwatch.store.terms import number_joins

_FIGURES = ("SELECT t, g, sum(n), sum(s) / sum(n), min(lo), max(hi) FROM ({}) AS f(t, g, n, s, lo, hi)"
            " GROUP BY ALL HAVING sum(n) > 0 ORDER BY 1, 2 NULLS LAST")


class NumericReads:
    """Needs the host's `_cursor()` and `_caches`."""

    _caches: Caches

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def numeric_figures_and_whole(self, ws: int, filters: Filters, field: str, group_by: str | None,
                                  bucket: timedelta | None) -> tuple[list[NumericPoint], NumericPoint | None]:
        # Each from the copies' hourly numbers where they serve, which any grouping has.
        whole = self.numeric_figures(ws, filters, field, None, None)
        return self.numeric_figures(ws, filters, field, group_by, bucket), whole[0] if whole else None

    def numeric_figures(self, ws: int, filters: Filters, field: str, group_by: str | None,
                        bucket: timedelta | None) -> list[NumericPoint]:
        con = self._cursor()
        p = Params()
        if self._caches.copies_serve(filters):
            self._caches.ready_copies(con, ws, filters)
            # The hourly numbers know model and device, not classes, tags, metadata or
            # confidences, and a bucket must be whole hours.
            hours = None if filters.classes else self._caches.summed_hours(filters, bucket)
            rows = _copies(ws, filters, field, group_by, bucket, hours, p)
            if hours is not None:
                rows = f"{_hourly(ws, filters, field, group_by, bucket, hours, p)} UNION ALL {rows}"
            return answer.records(NumericPoint, con.execute(_FIGURES.format(rows), p).fetchall())
        join, group = number_joins(ws, field, group_by, p, "id_key", "metadata")
        return answer.records(NumericPoint, con.execute(
            f"SELECT {_bucket(bucket, 'i.ts', p)} AS t, {group or 'NULL::VARCHAR'} AS g, count(*),"
            " avg(v.field_number), min(v.field_number), max(v.field_number)"
            f" FROM inferences i{join} WHERE {where(ws, filters, p, 'i')}"
            " GROUP BY ALL HAVING count(*) > 0 ORDER BY 1, 2 NULLS LAST", p).fetchall())


def _hourly(ws: int, filters: Filters, field: str, group_by: str | None, bucket: timedelta | None,
            hours: tuple[datetime, datetime], p: Params) -> str:
    """(bucket, group, n, sum, least, greatest) of the whole `hours` from `meta_number_hours`.
    Grouped by a metadata field, an hour in which no copy holds that field has no rows of it:
    its numbers not grouped are then all the `null` group's."""
    summed = f"meta_number_hours WHERE {sums_where(ws, filters, hours, p)} AND field_name = {p.add(field)}"
    t = _bucket(bucket, "hour", p)
    if group_by is None or not group_by.startswith("meta."):
        return (f"SELECT {t}, {group_by or 'NULL::VARCHAR'}, n, number_sum, number_min, number_max"
                f" FROM {summed} AND group_field IS NULL")
    grouped = p.add(group_by.removeprefix("meta."))
    return (f"SELECT {t}, group_value, n, number_sum, number_min, number_max FROM {summed}"
            f" AND group_field = {grouped}"
            f" UNION ALL SELECT {t}, NULL, n, number_sum, number_min, number_max FROM {summed}"
            " AND group_field IS NULL AND hour NOT IN (SELECT hour FROM meta_number_hours"
            f" WHERE {sums_where(ws, Filters(), hours, p)} AND field_name = {p.add(field)}"
            f" AND group_field = {grouped})")


def _copies(ws: int, filters: Filters, field: str, group_by: str | None, bucket: timedelta | None,
            hours: tuple[datetime, datetime] | None, p: Params) -> str:
    """(bucket, group, 1, number, number, number) of each copy of `field` with a number in the
    filters, outside the whole `hours` if given; grouped by a metadata field, joined on the
    inference key to that field's copies (NULL: the inference has none)."""
    bounds = None if hours is None else (p.add(hours[0]), p.add(hours[1]))

    def outside(ts: str) -> str:
        return "" if bounds is None else f" AND ({ts} < {bounds[0]} OR {ts} >= {bounds[1]})"

    join, group = "", f"f.{group_by}" if group_by else "NULL::VARCHAR"
    if group_by is not None and group_by.startswith("meta."):
        join = (f" LEFT JOIN (SELECT key, field_value FROM metadata_facts WHERE {where(ws, filters, p)}"
                f" AND field_name = {p.add(group_by.removeprefix('meta.'))}{outside('ts')}) m ON m.key = f.key")
        group = "m.field_value"
    return (f"SELECT {_bucket(bucket, 'f.ts', p)}, {group}, 1, f.field_number, f.field_number, f.field_number"
            f" FROM metadata_facts f{join} WHERE {where(ws, filters, p, 'f')} AND f.field_name = {p.add(field)}"
            f" AND f.field_number IS NOT NULL{outside('f.ts')}")


def _bucket(bucket: timedelta | None, column: str, p: Params) -> str:
    """The time bucket of `column` (an hour's start falls in the bucket of all its times when
    the bucket is whole hours), or NULL without a bucket."""
    return f"time_bucket({p.add(bucket)}, {column})" if bucket is not None else "NULL::TIMESTAMP"
