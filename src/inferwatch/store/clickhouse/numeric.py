"""A numeric metadata field's figures (count, average, least, greatest) per group and time
bucket on ClickHouse: the twin of `store/duckdb/numeric.py`, query for query (same groups, same
order, NULL groups last)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.store import rows as answer
from inferwatch.store.base import NumericPoint
from inferwatch.store.clickhouse import meta_sums
from inferwatch.store.clickhouse.sql import Params, bucket, metadata_rows, where
from inferwatch.store.hours import summed_hours
from inferwatch.store.terms import number_joins


class NumericReads:
    """Needs the host's `_rows()` and `current_meta_hours()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def current_meta_hours(self, ws: int, field: str, hours: meta_sums.Hours) -> None:
        raise NotImplementedError

    def current_number_hours(self, ws: int, field: str, group: str, hours: meta_sums.Hours) -> None:
        raise NotImplementedError

    def numeric_figures(self, ws: int, filters: Filters, field: str, group_by: str | None,
                        bucket_size: timedelta | None) -> list[NumericPoint]:
        return answer.records(NumericPoint, [row[:6] for row in self._numbers(ws, filters, field, group_by,
                                                                              bucket_size, "t, g")])

    def numeric_figures_and_whole(self, ws: int, filters: Filters, field: str, group_by: str | None,
                                  bucket_size: timedelta | None) -> tuple[list[NumericPoint], NumericPoint | None]:
        # One pass, each inference joined to the field's numbers (and the grouping field's values)
        # once: the points, and as the grouping set () the whole window (docs/performance.md).
        rows = self._numbers(ws, filters, field, group_by, bucket_size, "GROUPING SETS ((t, g), ())")
        points = answer.records(NumericPoint, [row[:6] for row in rows if row[6] == 0])
        whole = [NumericPoint(None, None, *row[2:6]) for row in rows if row[6] == 1]
        return points, whole[0] if whole else None

    def _numbers(self, ws: int, filters: Filters, field: str, group_by: str | None, bucket_size: timedelta | None,
                 grouping: str) -> list[tuple[Any, ...]]:
        """(t, g, count, average, least, greatest, grouping(t)) of the rows grouped so; grouping(t)
        is 1 in the row of a set that does not group by time and group (the whole window)."""
        p = Params()
        sums = meta_sums.field_of(filters, group_by, bucket_size, numeric=field)
        if sums is not None:
            # From the per-hour sums of the field's values, each value's number counted for the
            # inferences holding it (grouped by the field itself, a group is a value).
            hours = meta_sums.hours_of(filters)
            self.current_meta_hours(ws, field, hours)
            t = bucket("hour", bucket_size, p) if bucket_size is not None else "NULL"
            return self._rows(
                f"SELECT {t} AS t, {meta_sums.group_column(group_by)} AS g, sum(n), sum(n * number) / sum(n),"
                f" min(number), max(number), grouping(t) FROM {meta_sums.summed(ws, field, filters, hours, p)}"
                f" WHERE number IS NOT NULL GROUP BY {grouping} HAVING sum(n) > 0 ORDER BY t, g NULLS LAST", p)
        by = group_by.removeprefix("meta.") if group_by and group_by.startswith("meta.") else None
        whole = summed_hours(filters, bucket_size) if by and by != field and not filters.classes else None
        if by and whole is not None:
            # From the per-hour sums of the field's numbers by the grouping field's values.
            self.current_number_hours(ws, field, by, whole)
            t = bucket("ts", bucket_size, p) if bucket_size is not None else "NULL"
            return self._rows(
                f"SELECT {t} AS t, g, sum(n), sum(number_sum) / sum(n), min(number_min), max(number_max), grouping(t)"
                f" FROM {meta_sums.numbers_by(ws, field, by, filters, whole, p)} GROUP BY {grouping}"
                " HAVING sum(n) > 0 ORDER BY t, g NULLS LAST", p)
        t = bucket("i.ts", bucket_size, p) if bucket_size is not None else "NULL"
        join, group = number_joins(ws, field, group_by, p, "inference_id", metadata_rows(ws, filters, p))
        g = group or "NULL"
        return self._rows(
            f"SELECT {t} AS t, {g} AS g, count(), avg(v.field_number), min(v.field_number), max(v.field_number),"
            f" grouping(t) FROM inferences i{join} WHERE {where(ws, filters, p, 'i')}"
            f" GROUP BY {grouping} HAVING count() > 0 ORDER BY t, g NULLS LAST", p)
