"""A numeric metadata field's figures (count, average, least, greatest) per group and time
bucket on DuckDB: the twin of `store/clickhouse/numeric.py`, query for query.

One pass joining the filters' inferences to the field's numbers (and, to group by another
field, to that field's values). No cache answers it: the per-hour sums hold no metadata, and
the copies beside the metadata hold no numbers.
"""

from __future__ import annotations

from datetime import timedelta

import duckdb

from inferwatch.query.filters import Filters
from inferwatch.store import rows as answer
from inferwatch.store.base import NumericPoint
from inferwatch.store.duckdb.sql import Params, where
from inferwatch.store.terms import number_joins


class NumericReads:
    """Needs the host's `_cursor()`."""

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def numeric_figures(self, ws: int, filters: Filters, field: str, group_by: str | None,
                        bucket: timedelta | None) -> list[NumericPoint]:
        p = Params()
        t = f"time_bucket({p.add(bucket)}, i.ts)" if bucket is not None else "NULL::TIMESTAMP"
        join, group = number_joins(ws, field, group_by, p, "id_key", "metadata")
        g = group or "NULL::VARCHAR"
        return answer.records(NumericPoint, self._cursor().execute(
            f"SELECT {t} AS t, {g} AS g, count(*), avg(v.field_number), min(v.field_number), max(v.field_number)"
            f" FROM inferences i{join} WHERE {where(ws, filters, p, 'i')}"
            " GROUP BY ALL HAVING count(*) > 0 ORDER BY 1, 2 NULLS LAST", p).fetchall())
