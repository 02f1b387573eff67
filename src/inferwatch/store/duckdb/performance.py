"""Ground truth on DuckDB: the per-model setting, and the counts behind measured performance.

One scan of the filtered inferences, each joined (left) to its label, its pass/fail value and its
group value in the metadata table, computes the verdict per inference and counts everything the
report needs in one GROUPING SETS query, so the answer costs one pass however many figures it has.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import msgspec

from inferwatch.query.filters import Filters
from inferwatch.query.performance import Counts, GroundTruth
from inferwatch.store.duckdb.sql import where

# The verdict of one inference, from its predictions at or above the threshold (`found`).
_VERDICT = """
WITH base AS (
    SELECT i.ts, i.predictions, i.max_confidence,
        coalesce((?::VARCHAR[])[list_position(?::VARCHAR[], lab.field_value)], lab.field_value) AS expected,
        list_filter(i.predictions, lambda p: p.confidence >= ?) AS kept,
        pf.field_value AS pass_value,
        grp.field_value AS grp
    FROM inferences i
    LEFT JOIN metadata lab ON lab.ws = i.ws AND lab.id_key = i.id_key AND lab.field_name = ?
    LEFT JOIN metadata pf ON pf.ws = i.ws AND pf.id_key = i.id_key AND pf.field_name = ?
    LEFT JOIN metadata grp ON grp.ws = i.ws AND grp.id_key = i.id_key AND grp.field_name = ?
    WHERE {where}
),
judged AS (
    SELECT *,
        list_transform(kept, lambda p: p.class) AS found,
        (list_sort(list_transform(kept, lambda p: {{'c': -p.confidence, 'k': p.class}})))[1].k AS top
    FROM base
),
verdicts AS (
    SELECT ts, max_confidence, expected, grp, pass_value,
        CASE WHEN expected = ? THEN len(found) = 0 ELSE list_contains(found, expected) END AS correct,
        top,
        len(list_filter(found, lambda c: c <> ?)) > 0 AS flagged
    FROM judged
)
SELECT
    GROUPING(expected, predicted) AS g_confusion,
    GROUPING(bucket) AS g_time,
    GROUPING(grp) AS g_group,
    GROUPING(bin) AS g_bin,
    GROUPING(flagged, failed) AS g_inspection,
    expected, predicted, bucket, grp, bin, flagged, failed,
    count(*) AS n,
    count(*) FILTER (WHERE expected IS NOT NULL) AS labelled,
    count(*) FILTER (WHERE correct) AS right,
    avg(max_confidence) FILTER (WHERE expected IS NOT NULL) AS confidence
FROM (
    SELECT *,
        CASE WHEN expected IS NULL THEN NULL WHEN correct THEN expected ELSE coalesce(top, ?) END AS predicted,
        time_bucket(?::INTERVAL, ts, TIMESTAMP '1970-01-01') AS bucket,
        CASE WHEN expected IS NULL OR max_confidence IS NULL THEN NULL
             ELSE least(floor(max_confidence * ?)::INTEGER, ? - 1) END AS bin,
        CASE WHEN pass_value IS NULL THEN NULL ELSE list_contains(?::VARCHAR[], lower(pass_value)) END AS failed
    FROM verdicts
)
GROUP BY GROUPING SETS ((expected, predicted), (bucket), (grp), (bin), (flagged, failed), ())
"""


class PerformanceReads:
    """Ground-truth settings and performance counts; needs the host's `_cursor()`."""

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def ground_truth(self, ws: int, model_id: str) -> GroundTruth | None:
        row = self._cursor().execute(
            "SELECT ground_truth FROM model_settings WHERE ws = ? AND model_id = ?", [ws, model_id]
        ).fetchone()
        return None if row is None or row[0] is None else msgspec.json.decode(row[0], type=GroundTruth)

    def set_ground_truth(self, ws: int, model_id: str, setting: GroundTruth | None) -> None:
        """Writer thread only (a write, like every other)."""
        self._cursor().execute(
            "INSERT INTO model_settings VALUES (?, ?, ?, now()) ON CONFLICT (ws, model_id) DO UPDATE"
            " SET ground_truth = excluded.ground_truth, updated_at = excluded.updated_at",
            [ws, model_id, None if setting is None else msgspec.json.encode(setting).decode()],
        )

    def performance_counts(self, ws: int, filters: Filters, setting: GroundTruth, bucket: timedelta,
                           group_field: str | None, bins: int) -> Counts:
        clause, params = where(ws, filters, "i")
        sql = _VERDICT.format(where=clause)
        args: list[Any] = [
            list(setting.label_map.values()), list(setting.label_map), setting.confidence_threshold,
            setting.label_field, setting.pass_field or "", group_field or "",
            *params,
            setting.no_detection_label, setting.no_detection_label,
            setting.no_detection_label, bucket, bins, bins, [v.lower() for v in setting.fail_values],
        ]
        rows = self._cursor().execute(sql, args).fetchall()
        confusion: dict[tuple[str, str], int] = {}
        over_time: list[tuple[str, int, int]] = []
        by_group: list[tuple[str, int, int]] = []
        calibration: list[tuple[int, int, int, float | None]] = []
        inspection: dict[tuple[bool, bool], int] = {}
        total = 0
        for (g_conf, g_time, g_group, g_bin, g_insp, expected, predicted, bucket_start, grp, bin_, flagged,
             failed, n, labelled, right, confidence) in rows:
            if g_conf == 0:
                if expected is not None:
                    confusion[(expected, predicted)] = labelled
            elif g_time == 0:
                if labelled:
                    over_time.append((_iso(bucket_start), labelled, right))
            elif g_group == 0:
                if grp is not None and labelled and group_field:
                    by_group.append((grp, labelled, right))
            elif g_bin == 0:
                if bin_ is not None:
                    calibration.append((bin_, labelled, right, confidence))
            elif g_insp == 0:
                if failed is not None:
                    inspection[(bool(flagged), bool(failed))] = n
            else:
                total = n
        over_time.sort()
        by_group.sort(key=lambda g: (-g[1], g[0]))
        calibration.sort()
        return Counts(total, confusion, over_time, by_group, calibration, inspection)


def _iso(value: Any) -> str:
    return str(value.isoformat()) + "Z"
