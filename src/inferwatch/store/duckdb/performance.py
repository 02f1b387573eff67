"""Ground truth on DuckDB: the per-model setting, and the counts behind measured performance.

Two queries: the number of inferences in the filters, and `_counted`, every other figure in one
pass over the inferences that carry a label or a pass/fail value: from the copies' sums per hour
where the setting and filters let them answer (`cache/meta_verdicts.py`), else read from their
copies beside the metadata (`cache/meta_copies.py`) unless a confidence threshold needs their
predictions, which only the inferences hold.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import duckdb
import msgspec

from inferwatch.query.filters import Filters
from inferwatch.query.performance import COUNTED_VERDICTS, WRONG_PREFIX, Counts, GroundTruth, is_feedback
from inferwatch.store.duckdb.cache import Caches, meta_verdicts
from inferwatch.store.duckdb.sql import Params, where
from inferwatch.store.rows import iso


def _counted(joined: str, found: str, flagged: str, setting: GroundTruth, bucket: timedelta, bins: int,
             p: Params) -> str:
    """Every figure in one GROUPING SETS pass over `joined`, the inferences that carry a label or
    (when asked) a pass/fail value: the verdict of each labelled one, and the inspection table
    (did the model flag it, did the operation fail) among the figures. Joining the two fields in
    one scan reads the window's inferences once, not once per field. With no threshold the stored
    `classes` column answers "was it found" (`found`) and the stored `top_class` names a wrong
    verdict, so the nested predictions are read only when a threshold asks which of them clear it."""
    none, thr, size = p.add(setting.no_detection_label), p.add(setting.confidence_threshold), p.add(bins)
    return f"""
WITH joined AS ({joined}),
verdicts AS (
    SELECT ts, max_confidence, top_class, expected, pass_value,
        CASE WHEN expected IS NOT NULL THEN grp END AS grp,
        CASE WHEN expected = {none} THEN coalesce(max_confidence < {thr}, true) ELSE {found} END AS correct,
        {flagged} AS flagged
    FROM joined
)
SELECT GROUPING(expected, predicted), GROUPING(bucket), GROUPING(grp), GROUPING(bin), GROUPING(flagged, failed),
    expected, predicted, bucket, grp, bin, flagged, failed, count(*), count(*) FILTER (WHERE correct),
    avg(max_confidence)
FROM (
    SELECT *, CASE WHEN correct THEN expected WHEN coalesce(max_confidence >= {thr}, false) THEN top_class
        ELSE {none} END AS predicted,
        CASE WHEN expected IS NOT NULL
            THEN time_bucket({p.add(bucket)}::INTERVAL, ts, TIMESTAMP '1970-01-01') END AS bucket,
        CASE WHEN expected IS NOT NULL AND max_confidence IS NOT NULL
            THEN least(floor(max_confidence * {size})::INTEGER, {size} - 1) END AS bin,
        list_contains({p.add([v.lower() for v in setting.fail_values])}::VARCHAR[], lower(pass_value)) AS failed
    FROM verdicts
)
GROUP BY GROUPING SETS ((expected, predicted), (bucket), (grp), (bin), (flagged, failed))
"""


def _expected(column: str, top: str, setting: GroundTruth, p: Params) -> str:
    """The label in `column` as the model names it (through the label map). A feedback verdict
    names no class: `correct` expects what the model said (`top`, its most confident class, or
    "no detection"), `incorrect` anything but that."""
    if is_feedback(setting):
        said = f"coalesce({top}, {p.add(setting.no_detection_label)})"
        return (f"CASE {column} WHEN 'correct' THEN {said}"
                f" WHEN 'incorrect' THEN {p.add(WRONG_PREFIX)} || {said} END")
    return (f"coalesce(({p.add(list(setting.label_map.values()))}::VARCHAR[])"
            f"[list_position({p.add(list(setting.label_map))}::VARCHAR[], {column})], {column})")


class PerformanceReads:
    """Ground-truth settings and performance counts; needs the host's `_cursor()`."""

    _caches: Caches

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def _summed_inferences(self, ws: int, filters: Filters, hours: tuple[datetime, datetime] | None,
                           p: Params) -> str:
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
        p = Params()
        hours = meta_verdicts.summed_window(filters, setting, bins, group_field,
                                            self._caches.summed_hours(filters, bucket))
        if hours is None:
            (total,) = con.execute(f"SELECT count(*) FROM inferences i WHERE {where(ws, filters, p, 'i')}",
                                   p).fetchone() or (0,)
        else:
            (total,) = con.execute(f"SELECT coalesce(sum(n), 0) FROM {self._summed_inferences(ws, filters, hours, p)}",
                                   p).fetchone() or (0,)

        p = Params()
        if hours is not None:
            # Every figure from the copies' hourly sums (`cache/meta_verdicts.py`).
            self._caches.ready_copies(con, ws, filters)
            numeric = (meta_verdicts.numbered(con, ws, filters, [setting.label_field, group_field], hours)
                       if group_field else None)
            sql = meta_verdicts.counted(ws, filters, setting, hours, bucket, group_field,
                                        _expected("field_value", "top_class", setting, p), p, numeric)
        else:
            sql = self._counted_rows(con, ws, filters, setting, bucket, group_field, bins, p)
        confusion: dict[tuple[str, str], int] = {}
        over_time: list[tuple[str, int, int]] = []
        by_group: list[tuple[str, int, int]] = []
        calibration: list[tuple[int, int, int, float | None]] = []
        inspection: dict[tuple[bool, bool], int] = {}
        # Rows with a pass/fail value and no label fall into the NULL groups of the label's sets.
        for g_conf, g_time, g_group, g_bin, _g_flag, expected, predicted, bucket_start, grp, bin_, flag, failed, n, \
                right, confidence in con.execute(sql, p).fetchall():
            if g_conf == 0:
                if expected is not None:
                    confusion[(expected, predicted)] = n
            elif g_time == 0:
                if bucket_start is not None:
                    over_time.append((iso(bucket_start), n, right))
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

    def _counted_rows(self, con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, setting: GroundTruth,
                      bucket: timedelta, group_field: str | None, bins: int, p: Params) -> str:
        """`_counted` of the labelled inferences: from their copies beside the metadata, or with a
        threshold (or the caches off) from the inferences joined to their metadata."""
        thr, none = setting.confidence_threshold, setting.no_detection_label
        inspected = bool(setting.pass_field)
        if thr > 0 or not self._caches.copies_serve(filters):
            joined = _joined(ws, filters, setting, group_field, p)
            found = "list_contains(classes, expected)"
            if thr > 0:
                found = ("list_contains(list_transform(list_filter(predictions, lambda p: p.confidence"
                         f" >= {p.add(thr)}), lambda p: p.class), expected)")
            # Flagged: found anything but "no detection" (above the threshold when there is one).
            flagged = "NULL::BOOLEAN"
            if inspected and thr > 0:
                flagged = ("CASE WHEN pass_value IS NOT NULL THEN len(list_filter(predictions, lambda p:"
                           f" p.confidence >= {p.add(thr)} AND p.class <> {p.add(none)})) > 0 END")
            elif inspected:
                flagged = ("CASE WHEN pass_value IS NOT NULL THEN len(classes)"
                           f" > list_contains(classes, {p.add(none)})::INTEGER END")
        else:
            self._caches.ready_copies(con, ws, filters)
            joined = _copied(ws, filters, setting, group_field, p)
            found = "found"
            flagged = "CASE WHEN pass_value IS NOT NULL THEN detected END" if inspected else "NULL::BOOLEAN"
        return _counted(joined, found, flagged, setting, bucket, bins, p)


def _counted_only(alias: str, setting: GroundTruth, p: Params) -> str:
    """With the feedback verdict as the label: only the verdicts that say right or wrong."""
    return f" AND {alias}.field_value IN ({p.each(COUNTED_VERDICTS)})" if is_feedback(setting) else ""


def _joined(ws: int, filters: Filters, setting: GroundTruth, group_field: str | None, p: Params) -> str:
    """The labelled (or inspected) inferences joined to their fields, predictions included when a
    threshold needs them."""
    inspected = bool(setting.pass_field)
    joins = f"{'LEFT JOIN' if inspected else 'JOIN'} metadata lab ON lab.ws = i.ws AND lab.id_key = i.id_key"
    joins += f" AND lab.field_name = {p.add(setting.label_field)}{_counted_only('lab', setting, p)}"
    if inspected:
        joins += (" LEFT JOIN metadata pf ON pf.ws = i.ws AND pf.id_key = i.id_key"
                  f" AND pf.field_name = {p.add(setting.pass_field)}")
    if group_field:
        joins += f" LEFT JOIN metadata g ON g.ws = i.ws AND g.id_key = i.id_key AND g.field_name = {p.add(group_field)}"
    either = " AND (lab.field_value IS NOT NULL OR pf.field_value IS NOT NULL)" if inspected else ""
    return (f"SELECT i.ts, i.max_confidence, {'i.predictions,' if setting.confidence_threshold > 0 else ''}"
            f" i.classes, i.top_class, {'g.field_value' if group_field else 'NULL::VARCHAR'} AS grp,"
            f" {_expected('lab.field_value', 'i.top_class', setting, p)} AS expected,"
            f" {'pf.field_value' if inspected else 'NULL::VARCHAR'} AS pass_value"
            f" FROM inferences i {joins} WHERE {where(ws, filters, p, 'i')}{either}")


def _copied(ws: int, filters: Filters, setting: GroundTruth, group_field: str | None, p: Params) -> str:
    """The rows `_joined` gives, from the copies of the inferences beside their metadata
    (`cache/meta_copies.py`): each field's copies of the window, joined on the inference key (the
    label's to the pass/fail value's, both kept; the group's onto them). They are far fewer than
    the window's inferences, and whether the label was found and whether anything was detected
    are worked out on each copy. The copies hold no predictions: only without a threshold."""

    def copies(field: str, only: str = "") -> str:
        return f"metadata_facts f WHERE f.field_name = {p.add(field)}{only} AND {where(ws, filters, p, 'f')}"

    def detected() -> str:
        return f"len(f.classes) > list_contains(f.classes, {p.add(setting.no_detection_label)})::INTEGER AS detected"

    expected = _expected("f.field_value", "f.top_class", setting, p)
    sql = (f"SELECT f.key, f.ts, f.max_confidence, f.top_class, {detected()}, {expected} AS expected,"
           f" list_contains(f.classes, {expected}) AS found,"
           f" NULL::VARCHAR AS pass_value FROM {copies(setting.label_field, _counted_only('f', setting, p))}")
    if setting.pass_field:
        sql = ("SELECT coalesce(l.key, q.key) AS key, coalesce(l.ts, q.ts) AS ts,"
               " coalesce(l.max_confidence, q.max_confidence) AS max_confidence,"
               " coalesce(l.top_class, q.top_class) AS top_class, coalesce(l.detected, q.detected) AS detected,"
               f" l.expected, l.found, q.pass_value FROM ({sql}) l FULL JOIN (SELECT f.key, f.ts, f.max_confidence,"
               f" f.top_class, {detected()}, f.field_value AS pass_value FROM {copies(setting.pass_field)})"
               " q ON q.key = l.key")
    if group_field:
        return (f"SELECT b.*, g.field_value AS grp FROM ({sql}) b LEFT JOIN (SELECT f.key, f.field_value"
                f" FROM {copies(group_field)}) g ON g.key = b.key")
    return f"SELECT *, NULL::VARCHAR AS grp FROM ({sql})"

