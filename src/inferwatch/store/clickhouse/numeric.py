"""A numeric metadata field's figures (count, average, least, greatest) per group and time
bucket on ClickHouse: the twin of `store/duckdb/numeric.py`, query for query (same groups, same
order, NULL groups last)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.store import rows as answer
from inferwatch.store.base import NumericPoint
from inferwatch.store.clickhouse.sql import Params, bucket, where


class NumericReads:
    """Needs the host's `_rows()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def numeric_figures(self, ws: int, filters: Filters, field: str, group_by: str | None,
                        bucket_size: timedelta | None) -> list[NumericPoint]:
        p = Params()
        t = bucket("i.ts", bucket_size, p) if bucket_size is not None else "NULL"
        join = (" INNER JOIN (SELECT inference_id, field_number FROM metadata FINAL"
                f" WHERE ws = {p.add(ws, 'Int32')} AND field_name = {p.add(field, 'String')}"
                " AND field_number IS NOT NULL) v ON v.inference_id = i.inference_id")
        if group_by is None:
            g = "NULL"
        elif group_by in ("model_id", "device_id"):
            g = f"i.{group_by}"
        else:
            g = "m.field_value"
            name = p.add(group_by.removeprefix("meta."), "String")
            join += (" LEFT JOIN (SELECT inference_id, field_value FROM metadata FINAL"
                     f" WHERE ws = {p.add(ws, 'Int32')} AND field_name = {name}) m ON m.inference_id = i.inference_id")
        return answer.records(NumericPoint, self._rows(
            f"SELECT {t} AS t, {g} AS g, count(), avg(v.field_number), min(v.field_number), max(v.field_number)"
            f" FROM inferences i{join} WHERE {where(ws, filters, p, 'i')}"
            " GROUP BY t, g HAVING count() > 0 ORDER BY t, g NULLS LAST", p))
