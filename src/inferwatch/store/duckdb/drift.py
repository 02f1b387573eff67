"""Drift samples on DuckDB: the newest inferences of a window with what drift reads of them."""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from inferwatch.drift import SampleRow
from inferwatch.query.filters import Filters
from inferwatch.store.duckdb.sql import Params, where

_COLUMNS = ("n_predictions, inference_time, image_width, image_height,"
            " list_transform(predictions, lambda p: p.class), list_transform(predictions, lambda p: p.confidence),"
            " list_transform(predictions, lambda p: p.width), list_transform(predictions, lambda p: p.height)")


class DriftReads:
    """Needs the host's `_cursor()`."""

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def drift_sample(self, ws: int, filters: Filters, limit: int,
                     numbers: Sequence[str] | None = ()) -> list[SampleRow]:
        """At most `limit` inferences in the filters, newest first (ties by id), each with its
        predictions' classes, confidences and box sizes in prediction order, and the numbers of
        its metadata fields named in `numbers` (None: of every field sent as a number)."""
        p = Params()
        sample = (f"SELECT id_key, ts, inference_id, image_index, {_COLUMNS} FROM inferences"
                  f" WHERE {where(ws, filters, p)}"
                  f" ORDER BY ts DESC, inference_id DESC, image_index DESC LIMIT {p.add(limit)}")
        if numbers is not None and not numbers:
            return [SampleRow(*row[4:]) for row in self._cursor().execute(sample, p).fetchall()]
        # The sample first, then the metadata of only those inferences: a window's few thousand
        # rows, not the workspace's metadata, are joined.
        chosen = ("field_type = 'number'" if numbers is None
                  else f"list_contains({p.add(list(numbers))}::VARCHAR[], field_name)")
        rows = self._cursor().execute(
            f"WITH s AS ({sample}),"
            " m AS (SELECT id_key, list(field_name) AS names, list(field_number) AS numbers FROM metadata"
            f" WHERE ws = {p.add(ws)} AND field_number IS NOT NULL AND {chosen}"
            " AND id_key IN (SELECT id_key FROM s) GROUP BY id_key)"
            " SELECT s.* EXCLUDE (id_key, ts, inference_id, image_index), m.names, m.numbers"
            " FROM s LEFT JOIN m ON m.id_key = s.id_key"
            " ORDER BY s.ts DESC, s.inference_id DESC, s.image_index DESC", p).fetchall()
        return [SampleRow(n, t, w, h, cs, conf, widths, heights, dict(zip(names or (), found or (), strict=True)))
                for n, t, w, h, cs, conf, widths, heights, names, found in rows]
