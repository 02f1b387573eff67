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
        clause = where(ws, filters, p)
        order = "ORDER BY ts DESC, inference_id DESC, image_index DESC"
        if numbers is not None and not numbers:
            return [SampleRow(*row) for row in self._cursor().execute(
                f"SELECT {_COLUMNS} FROM inferences WHERE {clause} {order} LIMIT {p.add(limit)}", p).fetchall()]
        # The sample first, then the metadata of only those inferences, joined on the id string:
        # reading `id_key` from the inferences for the sample cost more than the whole join.
        chosen = ("field_type = 'number'" if numbers is None
                  else f"list_contains({p.add(list(numbers))}::VARCHAR[], field_name)")
        rows = self._cursor().execute(
            f"WITH s AS (SELECT ts, inference_id, image_index, {_COLUMNS} FROM inferences WHERE {clause}"
            f" {order} LIMIT {p.add(limit)}),"
            " m AS (SELECT inference_id, list(field_name) AS names, list(field_number) AS numbers FROM metadata"
            f" WHERE ws = {p.add(ws)} AND field_number IS NOT NULL AND {chosen}"
            " AND inference_id IN (SELECT inference_id FROM s) GROUP BY inference_id)"
            " SELECT s.* EXCLUDE (ts, inference_id, image_index), m.names, m.numbers"
            " FROM s LEFT JOIN m ON m.inference_id = s.inference_id"
            " ORDER BY s.ts DESC, s.inference_id DESC, s.image_index DESC", p).fetchall()
        return [SampleRow(n, t, w, h, cs, conf, widths, heights, dict(zip(names or (), found or (), strict=True)))
                for n, t, w, h, cs, conf, widths, heights, names, found in rows]
