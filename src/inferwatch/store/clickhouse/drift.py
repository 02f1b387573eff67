"""Drift samples on ClickHouse: the twin of `store/duckdb/drift.py`, row for row."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inferwatch.drift import SampleRow
from inferwatch.query.filters import Filters
from inferwatch.store.clickhouse.sql import Params, where

_COLUMNS = ("n_predictions, inference_time, image_width, image_height,"
            " predictions.class AS p_classes, predictions.confidence AS p_conf,"
            " predictions.width AS p_widths, predictions.height AS p_heights")


class DriftReads:
    """Needs the host's `_rows()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def drift_sample(self, ws: int, filters: Filters, limit: int,
                     numbers: Sequence[str] | None = ()) -> list[SampleRow]:
        p = Params()
        clause = where(ws, filters, p)
        sample = (f"SELECT ts, inference_id, image_index, {_COLUMNS} FROM inferences WHERE {clause}"
                  f" ORDER BY ts DESC, inference_id DESC, image_index DESC LIMIT {int(limit):d}")
        if numbers is not None and not numbers:
            return [_row(row[3:], (), ()) for row in self._rows(sample, p)]
        chosen = ("field_type = 'number'" if numbers is None
                  else f"has({p.add(list(numbers), 'Array(String)')}, field_name)")
        # The sample first, then the metadata of only those inferences (LEFT JOIN: an inference
        # without any gets empty arrays, ClickHouse's defaults).
        rows = self._rows(
            f"WITH s AS ({sample})"
            " SELECT s.n_predictions, s.inference_time, s.image_width, s.image_height,"
            " s.p_classes, s.p_conf, s.p_widths, s.p_heights, m.names, m.numbers"
            " FROM s LEFT JOIN (SELECT inference_id, groupArray(field_name) AS names,"
            " groupArray(assumeNotNull(field_number)) AS numbers FROM metadata FINAL"
            f" WHERE ws = {p.add(ws, 'Int32')} AND field_number IS NOT NULL AND {chosen}"
            " AND inference_id IN (SELECT inference_id FROM s) GROUP BY inference_id) m"
            " ON m.inference_id = s.inference_id"
            " ORDER BY s.ts DESC, s.inference_id DESC, s.image_index DESC", p)
        return [_row(row[:8], row[8], row[9]) for row in rows]


def _row(row: Sequence[Any], names: Sequence[str], numbers: Sequence[float]) -> SampleRow:
    n, t, w, h, cs, conf, widths, heights = row
    return SampleRow(int(n), t, w, h, [str(c) for c in cs], list(conf), list(widths), list(heights),
                     {str(k): float(v) for k, v in zip(names, numbers, strict=True)})
