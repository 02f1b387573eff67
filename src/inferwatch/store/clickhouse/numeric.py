"""A numeric metadata field's figures (count, average, least, greatest) per group and time
bucket on ClickHouse: the twin of `store/duckdb/numeric.py`, query for query (same groups, same
order, NULL groups last)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.store import rows as answer
from inferwatch.store.base import NumericPoint
from inferwatch.store.clickhouse.sql import Params, bucket, metadata_rows, where
from inferwatch.store.terms import number_joins


class NumericReads:
    """Needs the host's `_rows()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def numeric_figures(self, ws: int, filters: Filters, field: str, group_by: str | None,
                        bucket_size: timedelta | None) -> list[NumericPoint]:
        p = Params()
        t = bucket("i.ts", bucket_size, p) if bucket_size is not None else "NULL"
        join, group = number_joins(ws, field, group_by, p, "inference_id", metadata_rows(ws, filters, p))
        g = group or "NULL"
        return answer.records(NumericPoint, self._rows(
            f"SELECT {t} AS t, {g} AS g, count(), avg(v.field_number), min(v.field_number), max(v.field_number)"
            f" FROM inferences i{join} WHERE {where(ws, filters, p, 'i')}"
            " GROUP BY t, g HAVING count() > 0 ORDER BY t, g NULLS LAST", p))
