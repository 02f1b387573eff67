"""Ground truth on DuckDB: the per-model setting, and the counts behind measured performance.

Two queries: the number of inferences in the filters, and `_COUNTED`, every other figure in one
pass over the inferences that carry a label or a pass/fail value: read from their copies beside
the metadata (`cache/meta_copies.py`) unless a confidence threshold needs their predictions, which only the
inferences hold.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import msgspec

from inferwatch.query.filters import Filters
from inferwatch.query.performance import Counts, GroundTruth
from inferwatch.store.duckdb.cache import Caches
from inferwatch.store.duckdb.sql import where

# One pass over the inferences that carry a label or (when asked) a pass/fail value: the verdict
# of each labelled one and every figure counted in one GROUPING SETS pass, the inspection table
# (did the model flag it, did the operation fail) among them. Joining the two fields in one scan
# reads the window's inferences once, not once per field. With no threshold the stored
# `classes` column answers "was it found" and the stored `top_class` names a wrong verdict, so
# the nested predictions are read only when a threshold asks which of them clear it.
_JOINED = """
    SELECT i.ts, i.max_confidence, {predictions} i.classes, i.top_class, {group} AS grp,
        coalesce((?::VARCHAR[])[list_position(?::VARCHAR[], lab.field_value)], lab.field_value) AS expected,
        {pass_value} AS pass_value
    FROM inferences i
    {label_join} metadata lab ON lab.ws = i.ws AND lab.id_key = i.id_key AND lab.field_name = ?{pass_join}{group_join}
    WHERE {where}{either}
"""

_COUNTED = """
WITH joined AS ({joined}),
verdicts AS (
    SELECT ts, max_confidence, top_class, expected, pass_value,
        CASE WHEN expected IS NOT NULL THEN grp END AS grp,
        CASE WHEN expected = ? THEN coalesce(max_confidence < ?, true) ELSE {found} END AS correct,
        {flagged} AS flagged
    FROM joined
)
SELECT GROUPING(expected, predicted), GROUPING(bucket), GROUPING(grp), GROUPING(bin), GROUPING(flagged, failed),
    expected, predicted, bucket, grp, bin, flagged, failed, count(*), count(*) FILTER (WHERE correct),
    avg(max_confidence)
FROM (
    SELECT *, CASE WHEN correct THEN expected WHEN coalesce(max_confidence >= ?, false) THEN top_class
        ELSE ? END AS predicted,
        CASE WHEN expected IS NOT NULL THEN time_bucket(?::INTERVAL, ts, TIMESTAMP '1970-01-01') END AS bucket,
        CASE WHEN expected IS NOT NULL AND max_confidence IS NOT NULL
            THEN least(floor(max_confidence * ?)::INTEGER, ? - 1) END AS bin,
        list_contains(?::VARCHAR[], lower(pass_value)) AS failed
    FROM verdicts
)
GROUP BY GROUPING SETS ((expected, predicted), (bucket), (grp), (bin), (flagged, failed))
"""


class PerformanceReads:
    """Ground-truth settings and performance counts; needs the host's `_cursor()`."""

    _caches: Caches

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

        inspected = bool(setting.pass_field)
        if thr > 0 or not self._caches.copies_serve(filters):
            joined, args = self._joined(ws, filters, setting, group_field)
            args += [none, thr]
            found = "list_contains(classes, expected)"
            if thr > 0:
                found = ("list_contains(list_transform(list_filter(predictions, lambda p: p.confidence >= ?),"
                         " lambda p: p.class), expected)")
                args.append(thr)
            # Flagged: found anything but "no detection" (above the threshold when there is one).
            flagged = "NULL::BOOLEAN"
            if inspected and thr > 0:
                flagged = ("CASE WHEN pass_value IS NOT NULL THEN"
                           " len(list_filter(predictions, lambda p: p.confidence >= ? AND p.class <> ?)) > 0 END")
                args += [thr, none]
            elif inspected:
                flagged = "CASE WHEN pass_value IS NOT NULL THEN len(classes) > list_contains(classes, ?)::INTEGER END"
                args.append(none)
        else:
            self._caches.ready_copies(con, ws, filters)
            joined, args = _copied(ws, filters, setting, group_field)
            args += [none, thr]
            found = "found"
            flagged = "CASE WHEN pass_value IS NOT NULL THEN detected END" if inspected else "NULL::BOOLEAN"
        args += [thr, none, bucket, bins, bins, [v.lower() for v in setting.fail_values]]
        sql = _COUNTED.format(joined=joined, found=found, flagged=flagged)
        confusion: dict[tuple[str, str], int] = {}
        over_time: list[tuple[str, int, int]] = []
        by_group: list[tuple[str, int, int]] = []
        calibration: list[tuple[int, int, int, float | None]] = []
        inspection: dict[tuple[bool, bool], int] = {}
        # Rows with a pass/fail value and no label fall into the NULL groups of the label's sets.
        for g_conf, g_time, g_group, g_bin, _g_flag, expected, predicted, bucket_start, grp, bin_, flag, failed, n, \
                right, confidence in con.execute(sql, args).fetchall():
            if g_conf == 0:
                if expected is not None:
                    confusion[(expected, predicted)] = n
            elif g_time == 0:
                if bucket_start is not None:
                    over_time.append((_iso(bucket_start), n, right))
            elif g_group == 0:
                if grp is not None:
                    by_group.append((grp, n, right))
            elif g_bin == 0:
                if bin_ is not None:
                    calibration.append((bin_, n, right, confidence))
            elif flag is not None:
                inspection[(bool(flag), bool(failed))] = n
        over_time.sort()
        by_group.sort(key=lambda g: (-g[1], g[0]))
        calibration.sort()
        return Counts(int(total), confusion, over_time, by_group, calibration, inspection)

    def _joined(self, ws: int, filters: Filters, setting: GroundTruth, group_field: str | None
                ) -> tuple[str, list[Any]]:
        """The labelled (or inspected) inferences joined to their fields, predictions included
        when a threshold needs them; and the statement's parameters so far."""
        clause, params = where(ws, filters, "i")
        inspected = bool(setting.pass_field)
        args: list[Any] = [list(setting.label_map.values()), list(setting.label_map), setting.label_field]
        pass_join = group_join = ""
        if inspected:
            pass_join = " LEFT JOIN metadata pf ON pf.ws = i.ws AND pf.id_key = i.id_key AND pf.field_name = ?"
            args.append(setting.pass_field)
        if group_field:
            group_join = " LEFT JOIN metadata g ON g.ws = i.ws AND g.id_key = i.id_key AND g.field_name = ?"
            args.append(group_field)
        joined = _JOINED.format(
            predictions="i.predictions," if setting.confidence_threshold > 0 else "",
            group="g.field_value" if group_field else "NULL::VARCHAR",
            pass_value="pf.field_value" if inspected else "NULL::VARCHAR",
            label_join="LEFT JOIN" if inspected else "JOIN",
            pass_join=pass_join, group_join=group_join, where=clause,
            either=" AND (lab.field_value IS NOT NULL OR pf.field_value IS NOT NULL)" if inspected else "")
        return joined, [*args, *params]


def _copied(ws: int, filters: Filters, setting: GroundTruth, group_field: str | None) -> tuple[str, list[Any]]:
    """The rows `_JOINED` gives, from the copies of the inferences beside their metadata
    (`cache/meta_copies.py`): each field's copies of the window, joined on the inference key (the label's
    to the pass/fail value's, both kept; the group's onto them). They are far fewer than the
    window's inferences, and whether the label was found and whether anything was detected are
    worked out on each copy. The copies hold no predictions: only without a threshold."""
    copies, copy_params = where(ws, filters, "f")
    labels = [list(setting.label_map.values()), list(setting.label_map)]
    mapped = "coalesce((?::VARCHAR[])[list_position(?::VARCHAR[], f.field_value)], f.field_value)"
    detected = "len(f.classes) > list_contains(f.classes, ?)::INTEGER AS detected"
    sql = (f"SELECT f.key, f.ts, f.max_confidence, f.top_class, {detected}, {mapped} AS expected,"
           f" list_contains(f.classes, {mapped}) AS found, NULL::VARCHAR AS pass_value"
           f" FROM metadata_facts f WHERE f.field_name = ? AND {copies}")
    args = [setting.no_detection_label, *labels, *labels, setting.label_field, *copy_params]
    if setting.pass_field:
        sql = ("SELECT coalesce(l.key, q.key) AS key, coalesce(l.ts, q.ts) AS ts,"
               " coalesce(l.max_confidence, q.max_confidence) AS max_confidence,"
               " coalesce(l.top_class, q.top_class) AS top_class, coalesce(l.detected, q.detected) AS detected,"
               f" l.expected, l.found, q.pass_value FROM ({sql}) l FULL JOIN (SELECT f.key, f.ts, f.max_confidence,"
               f" f.top_class, {detected}, f.field_value AS pass_value FROM metadata_facts f"
               f" WHERE f.field_name = ? AND {copies}) q ON q.key = l.key")
        args += [setting.no_detection_label, setting.pass_field, *copy_params]
    if group_field:
        sql = (f"SELECT b.*, g.field_value AS grp FROM ({sql}) b LEFT JOIN (SELECT f.key, f.field_value"
               f" FROM metadata_facts f WHERE f.field_name = ? AND {copies}) g ON g.key = b.key")
        args += [group_field, *copy_params]
    else:
        sql = f"SELECT *, NULL::VARCHAR AS grp FROM ({sql})"
    return sql, args


def _iso(value: Any) -> str:
    return str(value.isoformat()) + "Z"
