"""Drift samples on DuckDB: the newest inferences of a window with what drift reads of them."""

from __future__ import annotations

import duckdb

from inferwatch.drift import SampleRow
from inferwatch.query.filters import Filters
from inferwatch.store.duckdb.sql import Params, where


class DriftReads:
    """Needs the host's `_cursor()`."""

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def drift_sample(self, ws: int, filters: Filters, limit: int) -> list[SampleRow]:
        """At most `limit` inferences in the filters, newest first (ties by id), each with its
        predictions' classes, confidences and box sizes in prediction order."""
        p = Params()
        rows = self._cursor().execute(
            "SELECT n_predictions, inference_time, image_width, image_height,"
            " list_transform(predictions, lambda p: p.class), list_transform(predictions, lambda p: p.confidence),"
            " list_transform(predictions, lambda p: p.width), list_transform(predictions, lambda p: p.height)"
            f" FROM inferences WHERE {where(ws, filters, p)}"
            f" ORDER BY ts DESC, inference_id DESC, image_index DESC LIMIT {p.add(limit)}", p).fetchall()
        return [SampleRow(*row) for row in rows]
