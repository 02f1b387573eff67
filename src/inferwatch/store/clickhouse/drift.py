"""Drift samples on ClickHouse: the twin of `store/duckdb/drift.py`, row for row."""

from __future__ import annotations

from typing import Any

from inferwatch.drift import SampleRow
from inferwatch.query.filters import Filters
from inferwatch.store.clickhouse.sql import Params, where


class DriftReads:
    """Needs the host's `_rows()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def drift_sample(self, ws: int, filters: Filters, limit: int) -> list[SampleRow]:
        p = Params()
        clause = where(ws, filters, p)
        rows = self._rows(
            "SELECT n_predictions, inference_time, image_width, image_height,"
            " arrayMap(p -> p.class, predictions), arrayMap(p -> p.confidence, predictions),"
            " arrayMap(p -> p.width, predictions), arrayMap(p -> p.height, predictions)"
            f" FROM inferences WHERE {clause} ORDER BY ts DESC, inference_id DESC, image_index DESC"
            f" LIMIT {int(limit):d}",
            p,
        )
        return [SampleRow(int(n), t, w, h, [str(c) for c in cs], list(conf), list(ws_), list(hs))
                for n, t, w, h, cs, conf, ws_, hs in rows]
