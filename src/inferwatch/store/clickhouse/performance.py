"""Ground truth on ClickHouse: the twin of `store/duckdb/performance.py`, same verdicts, same counts.

The verdict of each filtered inference is one subquery (labels, pass/fail and group values come
from `metadata FINAL`, so the latest write counts before merges); each figure is a small GROUP BY
over it. Ties between equally confident classes go to the first class name, as on DuckDB.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import msgspec

from inferwatch.query.filters import Filters
from inferwatch.query.performance import Counts, GroundTruth
from inferwatch.store.clickhouse.sql import Params, bucket, where
from inferwatch.store.duckdb.dashboard import _iso


def _field(alias: str, ws: int, name: str, p: Params) -> str:
    return (f" LEFT JOIN (SELECT inference_id, field_value FROM metadata FINAL WHERE ws = {p.add(ws, 'Int32')}"
            f" AND field_name = {p.add(name, 'String')}) {alias} ON {alias}.inference_id = i.inference_id")


def _verdicts(ws: int, filters: Filters, setting: GroundTruth, size: timedelta, group_field: str | None,
              bins: int, p: Params) -> str:
    keys = p.add(list(setting.label_map), "Array(String)")
    values = p.add(list(setting.label_map.values()), "Array(String)")
    threshold = p.add(setting.confidence_threshold, "Float64")
    none = p.add(setting.no_detection_label, "String")
    n = p.add(bins, "Int32")
    fail = p.add([v.lower() for v in setting.fail_values], "Array(String)")
    joins = _field("lab", ws, setting.label_field, p) + _field("pf", ws, setting.pass_field or "", p) \
        + _field("grp", ws, group_field or "", p)
    clause = where(ws, filters, p, "i")
    base = (
        "SELECT i.ts AS ts, i.max_confidence AS max_confidence, grp.field_value AS grp,"
        f" if(indexOf({keys}, lab.field_value) > 0, {values}[indexOf({keys}, lab.field_value)], lab.field_value)"
        " AS expected,"
        f" arrayFilter(p -> p.confidence >= {threshold}, i.predictions) AS kept,"
        " arrayMap(p -> p.class, kept) AS found,"
        " if(empty(kept), NULL, arraySort(p -> (-p.confidence, p.class), kept)[1].class) AS top,"
        f" if(isNull(expected), NULL, if(expected = {none}, empty(found), has(found, expected))) AS correct,"
        f" notEmpty(arrayFilter(c -> c != {none}, found)) AS flagged,"
        f" if(isNull(pf.field_value), NULL, has({fail}, lower(pf.field_value))) AS failed"
        f" FROM inferences i{joins} WHERE {clause}"
    )
    return (
        f"SELECT *, if(isNull(expected), NULL, if(correct, expected, ifNull(top, {none}))) AS predicted,"
        f" {bucket('ts', size, p)} AS bucket,"
        f" if(isNull(expected) OR isNull(max_confidence), NULL, least(toInt32(floor(max_confidence * {n})), {n} - 1))"
        f" AS bin FROM ({base})"
    )


class PerformanceReads:
    """Ground-truth settings and performance counts; needs the host's `_rows()` and `_client()`."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _command(self, sql: str, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def ground_truth(self, ws: int, model_id: str) -> GroundTruth | None:
        p = Params()
        rows = self._rows(
            f"SELECT ground_truth FROM model_settings FINAL WHERE ws = {p.add(ws, 'Int32')}"
            f" AND model_id = {p.add(model_id, 'String')}", p)
        return None if not rows or rows[0][0] is None else msgspec.json.decode(rows[0][0], type=GroundTruth)

    def set_ground_truth(self, ws: int, model_id: str, setting: GroundTruth | None) -> None:
        p = Params()
        text = None if setting is None else msgspec.json.encode(setting).decode()
        self._command(
            f"INSERT INTO model_settings VALUES ({p.add(ws, 'Int32')}, {p.add(model_id, 'String')},"
            f" {p.add(text, 'Nullable(String)')}, now64(6))", p)

    def performance_counts(self, ws: int, filters: Filters, setting: GroundTruth, bucket_size: timedelta,
                           group_field: str | None, bins: int) -> Counts:
        settings = " SETTINGS join_use_nulls = 1"

        def run(select: str, tail: str) -> list[tuple[Any, ...]]:
            p = Params()
            source = _verdicts(ws, filters, setting, bucket_size, group_field, bins, p)
            return self._rows(f"SELECT {select} FROM ({source}) {tail}{settings}", p)

        p = Params()
        (total,), = self._rows(f"SELECT count() FROM inferences i WHERE {where(ws, filters, p, 'i')}", p)
        confusion = {(e, pr): n for e, pr, n in run(
            "expected, predicted, count()", "WHERE isNotNull(expected) GROUP BY expected, predicted")}
        over_time = [(str(_iso(t)), n, c) for t, n, c in run(
            "bucket, countIf(isNotNull(expected)) AS n, countIf(correct)",
            "GROUP BY bucket HAVING n > 0 ORDER BY bucket")]
        by_group = [(g, n, c) for g, n, c in run(
            "grp, countIf(isNotNull(expected)) AS n, countIf(correct)",
            "WHERE isNotNull(grp) GROUP BY grp HAVING n > 0")] if group_field else []
        by_group.sort(key=lambda g: (-g[1], g[0]))
        calibration = [(int(b), n, c, conf) for b, n, c, conf in run(
            "bin, count(), countIf(correct), avg(max_confidence)", "WHERE isNotNull(bin) GROUP BY bin ORDER BY bin")]
        inspection = {(bool(f), bool(x)): n for f, x, n in run(
            "flagged, failed, count()", "WHERE isNotNull(failed) GROUP BY flagged, failed")}
        return Counts(int(total), confusion, over_time, by_group, calibration, inspection)
