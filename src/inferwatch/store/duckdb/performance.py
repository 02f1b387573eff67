"""Ground truth on DuckDB: the per-model setting, and the counts behind measured performance.

Three queries: the number of inferences in the filters; the labelled ones (joined to their label,
and to their group value when asked), with the verdict per inference and every labelled figure
counted in one GROUPING SETS pass; and, when a pass/fail field is set, the inspection table over
the inferences that carry it. The nested predictions are read only when a confidence threshold
asks which of them clear it: the stored `classes`, `max_confidence` and `top_class` say the rest.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import msgspec

from inferwatch.query.filters import Filters
from inferwatch.query.performance import Counts, GroundTruth
from inferwatch.store.duckdb.sql import where

# Labelled inferences only. With no threshold the stored `classes` column answers "was it found"
# and the stored `top_class` names a wrong verdict, so the nested predictions are read only when a
# threshold asks which predictions clear it.
_LABELLED = """
WITH labelled AS (
    SELECT i.ts, i.max_confidence, {predictions} i.classes, i.top_class, {group} AS grp,
        coalesce((?::VARCHAR[])[list_position(?::VARCHAR[], lab.field_value)], lab.field_value) AS expected
    FROM inferences i
    JOIN metadata lab ON lab.ws = i.ws AND lab.id_key = i.id_key AND lab.field_name = ?{group_join}
    WHERE {where}
),
verdicts AS (
    SELECT ts, max_confidence, top_class, expected, grp,
        CASE WHEN expected = ? THEN coalesce(max_confidence < ?, true) ELSE {found} END AS correct
    FROM labelled
)
SELECT GROUPING(expected, predicted), GROUPING(bucket), GROUPING(grp), GROUPING(bin),
    expected, predicted, bucket, grp, bin, count(*), count(*) FILTER (WHERE correct), avg(max_confidence)
FROM (
    SELECT *, CASE WHEN correct THEN expected WHEN coalesce(max_confidence >= ?, false) THEN top_class
        ELSE ? END AS predicted,
        time_bucket(?::INTERVAL, ts, TIMESTAMP '1970-01-01') AS bucket,
        CASE WHEN max_confidence IS NOT NULL THEN least(floor(max_confidence * ?)::INTEGER, ? - 1) END AS bin
    FROM verdicts
)
GROUP BY GROUPING SETS ((expected, predicted), (bucket), (grp), (bin))
"""

# Inferences with a pass/fail value: did the model flag them (find anything but "no detection")?
_INSPECTED = """
SELECT {flagged} AS flagged, list_contains(?::VARCHAR[], lower(pf.field_value)) AS failed, count(*)
FROM inferences i
JOIN metadata pf ON pf.ws = i.ws AND pf.id_key = i.id_key AND pf.field_name = ?
WHERE {where}
GROUP BY ALL
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
        con = self._cursor()
        thr, none = setting.confidence_threshold, setting.no_detection_label
        clause, params = where(ws, filters, "i")
        (total,) = con.execute(f"SELECT count(*) FROM inferences i WHERE {clause}", params).fetchone() or (0,)

        args: list[Any] = [list(setting.label_map.values()), list(setting.label_map), setting.label_field]
        group_join = ""
        if group_field:
            group_join = (" LEFT JOIN metadata g ON g.ws = i.ws AND g.id_key = i.id_key AND g.field_name = ?")
            args.append(group_field)
        clause, params = where(ws, filters, "i")
        args += [*params, none, thr]
        found = "list_contains(classes, expected)"
        if thr > 0:
            found = ("list_contains(list_transform(list_filter(predictions, lambda p: p.confidence >= ?),"
                     " lambda p: p.class), expected)")
            args.append(thr)
        args += [thr, none, bucket, bins, bins]
        sql = _LABELLED.format(group="g.field_value" if group_field else "NULL::VARCHAR", group_join=group_join,
                               where=clause, found=found, predictions="i.predictions," if thr > 0 else "")
        confusion: dict[tuple[str, str], int] = {}
        over_time: list[tuple[str, int, int]] = []
        by_group: list[tuple[str, int, int]] = []
        calibration: list[tuple[int, int, int, float | None]] = []
        for g_conf, g_time, g_group, _g_bin, expected, predicted, bucket_start, grp, bin_, n, right, confidence \
                in con.execute(sql, args).fetchall():
            if g_conf == 0:
                confusion[(expected, predicted)] = n
            elif g_time == 0:
                over_time.append((_iso(bucket_start), n, right))
            elif g_group == 0:
                if grp is not None:
                    by_group.append((grp, n, right))
            elif bin_ is not None:
                calibration.append((bin_, n, right, confidence))
        over_time.sort()
        by_group.sort(key=lambda g: (-g[1], g[0]))
        calibration.sort()

        inspection: dict[tuple[bool, bool], int] = {}
        if setting.pass_field:
            clause, params = where(ws, filters, "i")
            if thr > 0:
                flagged = "len(list_filter(i.predictions, lambda p: p.confidence >= ? AND p.class <> ?)) > 0"
                flag_args: list[Any] = [thr, none]
            else:
                flagged = "len(i.classes) > list_contains(i.classes, ?)::INTEGER"  # any class but none
                flag_args = [none]
            rows = con.execute(_INSPECTED.format(flagged=flagged, where=clause),
                               [*flag_args, [v.lower() for v in setting.fail_values], setting.pass_field, *params])
            inspection = {(bool(f), bool(x)): n for f, x, n in rows.fetchall()}
        return Counts(int(total), confusion, over_time, by_group, calibration, inspection)


def _iso(value: Any) -> str:
    return str(value.isoformat()) + "Z"
