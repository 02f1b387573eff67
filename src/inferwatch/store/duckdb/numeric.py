"""A numeric metadata field's figures (count, average, least, greatest) per group and time
bucket on DuckDB: the twin of `store/clickhouse/numeric.py`, query for query.

The plain answer is one pass joining the filters' inferences to the field's numbers (and, to
group by another field, to that field's values): about a second for a month of 5 million
inferences. Counts, sums, least and greatest merge across hours, so the copies' cache keeps them
per hour, model and device, alone and per value of every field beside the number in the hour
(`meta_number_hours`, made with the copies in `cache/meta_copies.py`); a window's whole hours
read those, its partial first and last hours the copies, and the answer is the scan's.
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


class NumericReads:
    """Needs the host's `_cursor()` and `_caches`."""

    _caches: Caches

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def numeric_figures(self, ws: int, filters: Filters, field: str, group_by: str | None,
                        bucket: timedelta | None) -> list[NumericPoint]:
        # The hourly numbers know model and device, not classes, tags, metadata or confidences.
        hours = None if filters.classes else self._caches.summed_hours(filters, bucket)
        if hours is not None and self._caches.copies_serve(filters):
            return self._numeric_summed(ws, filters, field, group_by, bucket, hours)
        p = Params()
        joins, g = _rows_group(ws, field, group_by, p)
        return answer.records(NumericPoint, self._cursor().execute(
            f"SELECT {_bucket(bucket, 'i.ts', p)} AS t, {g} AS g, count(*),"
            " avg(v.field_number), min(v.field_number), max(v.field_number)"
            f" FROM inferences i{joins} WHERE {where(ws, filters, p, 'i')}"
            " GROUP BY ALL HAVING count(*) > 0 ORDER BY 1, 2 NULLS LAST", p).fetchall())

    def _numeric_summed(self, ws: int, filters: Filters, field: str, group_by: str | None,
                        bucket: timedelta | None, hours: tuple[datetime, datetime]) -> list[NumericPoint]:
        """The same figures from the hourly numbers of the whole `hours` and the copies of the
        partial ones. Grouped by a metadata field, an hour in which no copy holds that field has
        no rows of it: its numbers not grouped are then all the `null` group's."""
        con = self._cursor()
        self._caches.ready_copies(con, ws, filters)
        p = Params()
        summed = f"meta_number_hours WHERE {sums_where(ws, filters, hours, p)} AND field_name = {p.add(field)}"
        t = _bucket(bucket, "hour", p)
        if group_by is not None and group_by.startswith("meta."):
            grouped = p.add(group_by.removeprefix("meta."))
            hourly = (f"SELECT {t}, group_value, n, number_sum, number_min, number_max FROM {summed}"
                      f" AND group_field = {grouped}"
                      f" UNION ALL SELECT {t}, NULL, n, number_sum, number_min, number_max FROM {summed}"
                      " AND group_field IS NULL AND hour NOT IN (SELECT hour FROM meta_number_hours"
                      f" WHERE {sums_where(ws, Filters(), hours, p)} AND field_name = {p.add(field)}"
                      f" AND group_field = {grouped})")
        else:
            g = group_by or "NULL::VARCHAR"
            hourly = f"SELECT {t}, {g}, n, number_sum, number_min, number_max FROM {summed} AND group_field IS NULL"
        # The partial hours from the field's copies (current for the whole window now), which
        # carry the number and the inference's columns: no pass over the metadata table.
        lo, hi = p.add(hours[0]), p.add(hours[1])
        copies = (f"metadata_facts f{{}} WHERE {where(ws, filters, p, 'f')} AND f.field_name = {p.add(field)}"
                  f" AND f.field_number IS NOT NULL AND (f.ts < {lo} OR f.ts >= {hi})")
        if group_by is not None and group_by.startswith("meta."):
            g_rows = "m.field_value"
            copies = copies.format(
                f" LEFT JOIN (SELECT key, field_value FROM metadata_facts WHERE {where(ws, filters, p)}"
                f" AND field_name = {p.add(group_by.removeprefix('meta.'))} AND (ts < {lo} OR ts >= {hi}))"
                " m ON m.key = f.key")
        else:
            g_rows = f"f.{group_by}" if group_by else "NULL::VARCHAR"
            copies = copies.format("")
        edges = (f"SELECT {_bucket(bucket, 'f.ts', p)}, {g_rows}, 1, f.field_number, f.field_number, f.field_number"
                 f" FROM {copies}")
        return answer.records(NumericPoint, con.execute(
            "SELECT t, g, sum(n), sum(s) / sum(n), min(lo), max(hi)"
            f" FROM ({hourly} UNION ALL {edges}) AS f(t, g, n, s, lo, hi)"
            " GROUP BY ALL HAVING sum(n) > 0 ORDER BY 1, 2 NULLS LAST", p).fetchall())


def _bucket(bucket: timedelta | None, column: str, p: Params) -> str:
    """The time bucket of `column` (an hour's start falls in the bucket of all its times when
    the bucket is whole hours), or NULL without a bucket."""
    return f"time_bucket({p.add(bucket)}, {column})" if bucket is not None else "NULL::TIMESTAMP"


def _rows_group(ws: int, field: str, group_by: str | None, p: Params) -> tuple[str, str]:
    """The joins giving the rows `i` their number (`v.field_number`) and the group's expression."""
    join, group = number_joins(ws, field, group_by, p, "id_key", "metadata")
    return join, group or "NULL::VARCHAR"
