"""Ground truth on ClickHouse: the twin of `store/duckdb/performance.py`, same verdicts, same counts.

The labelled inferences with their verdict are one subquery (labels and group values come from
`sql.metadata_rows`, so the latest write counts before merges); the figures are one GROUP BY over
it, a grouping set each, and the inspection table its own query. Between equally confident
predictions the first in the inference's list is its verdict, as on DuckDB. Where the verdict
sums answer (`summed_window`, as DuckDB's `meta_verdicts` do), the window's whole hours are read
from them (`meta_sums.VERDICTS`) and only its partial first and last hours from the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import msgspec

from inferwatch.query.filters import Filters
from inferwatch.query.performance import COUNTED_VERDICTS, WRONG_PREFIX, Counts, GroundTruth, is_feedback
from inferwatch.store.clickhouse import made
from inferwatch.store.clickhouse.made import Hours
from inferwatch.store.clickhouse.meta_sums import VERDICT_BINS, VERDICTS, Key
from inferwatch.store.clickhouse.sql import Params, bucket, metadata_rows, where
from inferwatch.store.hours import summed_hours
from inferwatch.store.rows import iso
from inferwatch.store.terms import field_rows


def _field(alias: str, ws: int, filters: Filters, name: str, p: Params, kind: str = "LEFT JOIN",
           only: tuple[str, ...] = ()) -> str:
    among = f" AND field_value IN {p.add(list(only), 'Array(String)')}" if only else ""
    values = field_rows(ws, name, p, "inference_id, field_value", metadata_rows(ws, filters, p))
    return f" {kind} ({values}{among}) {alias} ON {alias}.inference_id = i.inference_id"


def _expected(setting: GroundTruth, none: str, p: Params, label: str = "lab.field_value") -> str:
    """DuckDB's `_expected`: the label (column `label`) through the map, or what a feedback
    verdict expects."""
    if is_feedback(setting):
        said = (f"if(isNull(i.max_confidence), {none},"
                " i.predictions.class[indexOf(i.predictions.confidence, i.max_confidence)])")
        return f"if({label} = 'correct', {said}, concat({p.add(WRONG_PREFIX, 'String')}, {said}))"
    keys = p.add(list(setting.label_map), "Array(String)")
    values = p.add(list(setting.label_map.values()), "Array(String)")
    return f"if(indexOf({keys}, {label}) > 0, {values}[indexOf({keys}, {label})], {label})"


def _labelled(ws: int, filters: Filters, setting: GroundTruth, size: timedelta, group_field: str | None,
              bins: int, p: Params) -> str:
    """The labelled inferences with their verdict: DuckDB's `_LABELLED`, expression for expression."""
    threshold = p.add(setting.confidence_threshold, "Float64")
    none = p.add(setting.no_detection_label, "String")
    n = p.add(bins, "Int32")
    joins = _field("lab", ws, filters, setting.label_field, p, "INNER JOIN",
                   COUNTED_VERDICTS if is_feedback(setting) else ())
    if group_field:
        joins += _field("grp", ws, filters, group_field, p)
    found = "has(i.classes, expected)" if setting.confidence_threshold == 0 else \
        f"has(arrayFilter((c, v) -> v >= {threshold}, i.predictions.class, i.predictions.confidence), expected)"
    clause = where(ws, filters, p, "i")
    base = (
        f"SELECT i.ts AS ts, i.max_confidence AS max_confidence, {'grp.field_value' if group_field else 'NULL'} AS grp,"
        f" {_expected(setting, none, p)} AS expected,"
        f" if(expected = {none}, ifNull(max_confidence < {threshold}, 1), {found}) AS correct,"
        f" if(ifNull(max_confidence >= {threshold}, 0),"
        " i.predictions.class[indexOf(i.predictions.confidence, max_confidence)], NULL) AS top"
        f" FROM inferences i{joins} WHERE {clause}"
    )
    return (
        f"SELECT *, if(correct, expected, ifNull(top, {none})) AS predicted,"
        f" {bucket('ts', size, p)} AS bucket,"
        f" if(isNull(max_confidence), NULL, least(toInt32(floor(max_confidence * {n})), {n} - 1)) AS bin"
        f" FROM ({base})"
    )


def _flagged(setting: GroundTruth, none: str, p: Params) -> str:
    """Whether inference `i` found anything but the "no detection" label."""
    if setting.confidence_threshold == 0:
        return f"notEmpty(arrayFilter(c -> c != {none}, i.classes))"
    threshold = p.add(setting.confidence_threshold, "Float64")
    return f"arrayExists((c, v) -> v >= {threshold} AND c != {none}, i.predictions.class, i.predictions.confidence)"


def _inspected(ws: int, filters: Filters, setting: GroundTruth, p: Params) -> str:
    """(flagged, failed, n) of each inference with a pass/fail value: one row each."""
    none = p.add(setting.no_detection_label, "String")
    joins = _field("pf", ws, filters, setting.pass_field or "", p, "INNER JOIN")
    return (f"SELECT {_flagged(setting, none, p)} AS flagged, has({_failing(setting, p)}, lower(pf.field_value))"
            f" AS failed, toUInt64(1) AS n FROM inferences i{joins} WHERE {where(ws, filters, p, 'i')}")


def _failing(setting: GroundTruth, p: Params) -> str:
    return p.add([v.lower() for v in setting.fail_values], "Array(String)")


def summed_window(filters: Filters, setting: GroundTruth, size: timedelta, group_field: str | None,
                  bins: int) -> Hours | None:
    """The window's whole hours, if the verdict sums (`meta_sums.VERDICTS`) answer this setting
    and these filters; else None. The sums know the raw label, the model and a grouping field's
    value, no more: no confidence threshold, no operator feedback, a label map sending values
    to themselves or to the "no detection" label, the default bins, no device, class, tag,
    metadata or confidence term, buckets of whole hours."""
    if setting.confidence_threshold > 0 or is_feedback(setting) or bins != VERDICT_BINS:
        return None
    if any(v not in (k, setting.no_detection_label) for k, v in setting.label_map.items()):
        return None
    if filters.device_ids or filters.classes or group_field == setting.label_field:
        return None
    return summed_hours(filters, size)


def verdict_keys(setting: GroundTruth, group_field: str | None) -> list[Key]:
    """The verdict sums a summed read needs (`meta_sums.MetaSums.current_verdict_hours`)."""
    keys = [(setting.label_field, "")] + ([(setting.label_field, group_field)] if group_field else [])
    return keys + ([(setting.pass_field, "")] if setting.pass_field else [])


def _verdicts(ws: int, filters: Filters, hours: Hours, field: str, group: str, columns: str, p: Params) -> str:
    """`SELECT columns` of the made verdict sums of the whole `hours` of `field` (by `group`)."""
    return (f"SELECT {columns} FROM verdict_hours WHERE {made.current(VERDICTS.checks, ws, hours, p, field, group)}"
            f"{made.key_terms(filters, p, device=False)}")


def _summed(ws: int, filters: Filters, setting: GroundTruth, size: timedelta, group_field: str | None, hours: Hours,
            p: Params) -> str:
    """`_labelled`'s columns (and `n`, `confidence_sum`) of the filters' labelled inferences: the
    made whole hours' verdict sums, each row of the partial hours' inferences with `n` 1. With
    the label map of `summed_window`, "the classes hold the expected class" is "they hold the
    label". The sums by the grouping field's value count towards the grouping set by `grp`
    only: their other keys are NULL, and `performance_counts` leaves out the groups of a NULL
    key."""
    none = p.add(setting.no_detection_label, "String")
    correct = (f"{_expected(setting, none, p, 'field_value')} AS expected,"
               f" if(expected = {none}, quiet, found) AS correct")
    whole = _verdicts(ws, filters, hours, setting.label_field, "",
                      f"toDateTime64(hour, 6, 'UTC') AS ts, {correct}, top_class AS top, bin, n, confidence_sum", p)
    columns = "expected, predicted, bucket, grp, bin, correct, n, confidence_sum"
    parts = [f"SELECT {columns} FROM (SELECT *, if(correct, expected, ifNull(top, {none})) AS predicted,"
             f" {bucket('ts', size, p)} AS bucket, NULL AS grp FROM ({whole}))"]
    if group_field:
        grouped = _verdicts(ws, filters, hours, setting.label_field, group_field,
                            f"group_value AS grp, {correct}, n", p)
        parts.append(f"SELECT NULL, NULL, NULL, grp, NULL, correct, n, 0 FROM ({grouped})")
    parts += [f"SELECT {columns} FROM (SELECT *, toUInt64(1) AS n, ifNull(max_confidence, 0) AS confidence_sum"
              f" FROM ({_labelled(ws, edge, setting, size, group_field, VERDICT_BINS, p)}))"
              for edge in made.edges(filters, hours)]
    return " UNION ALL ".join(parts)


def _summed_inspected(ws: int, filters: Filters, setting: GroundTruth, hours: Hours, p: Params) -> str:
    """`_inspected`'s rows from the pass field's verdict sums: several classes, or one that is
    not the "no detection" label, is something found."""
    none = p.add(setting.no_detection_label, "String")
    assert setting.pass_field
    whole = _verdicts(ws, filters, hours, setting.pass_field, "",
                      f"several OR ifNull(lone != {none}, 0) AS flagged,"
                      f" has({_failing(setting, p)}, lower(field_value)) AS failed, n", p)
    return " UNION ALL ".join([whole, *(_inspected(ws, edge, setting, p) for edge in made.edges(filters, hours))])


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

    def current_verdict_hours(self, ws: int, keys: Sequence[Key], hours: Hours) -> None:
        raise NotImplementedError

    def performance_counts(self, ws: int, filters: Filters, setting: GroundTruth, bucket_size: timedelta,
                           group_field: str | None, bins: int) -> Counts:
        settings = " SETTINGS join_use_nulls = 1"
        p = Params()
        (total,), = self._rows(f"SELECT count() FROM inferences i WHERE {where(ws, filters, p, 'i')}", p)
        hours = summed_window(filters, setting, bucket_size, group_field, bins)
        if hours is not None:
            self.current_verdict_hours(ws, verdict_keys(setting, group_field), hours)
        # The four figures in one pass over the labelled inferences (each is a join of the window's
        # inferences to their labels): a grouping set each, told apart by which keys it groups.
        p = Params()
        if hours is None:
            source = (f"SELECT *, toUInt64(1) AS n, max_confidence AS confidence_sum"
                      f" FROM ({_labelled(ws, filters, setting, bucket_size, group_field, bins, p)})")
        else:
            source = _summed(ws, filters, setting, bucket_size, group_field, hours, p)
        confusion: dict[tuple[str, str], int] = {}
        times: list[tuple[Any, int, int]] = []
        by_group: list[tuple[str, int, int]] = []
        calibration: list[tuple[int, int, int, float | None]] = []
        for e, pr, t, g, b, by_label, by_time, by_bin, n, c, conf in self._rows(
                "SELECT expected, predicted, bucket, grp, bin, grouping(expected), grouping(bucket), grouping(bin),"
                " sum(n), sumIf(n, correct), sumIf(confidence_sum, bin IS NOT NULL) / sumIf(n, bin IS NOT NULL)"
                f" FROM ({source}) GROUP BY GROUPING SETS ((expected, predicted), (bucket), (bin), (grp))"
                " HAVING (grouping(expected) = 1 OR expected IS NOT NULL)"
                " AND (grouping(bucket) = 1 OR bucket IS NOT NULL)"
                f"{settings}",
                p):
            if by_label == 0:  # 0: the key is one this row is grouped by
                confusion[(e, pr)] = n
            elif by_time == 0:
                times.append((t, n, c))
            elif by_bin == 0:
                if b is not None:
                    calibration.append((int(b), n, c, conf))
            elif g is not None:  # grp is NULL throughout without a `by` field
                by_group.append((g, n, c))
        over_time = [(iso(t), n, c) for t, n, c in sorted(times)]
        calibration.sort()
        by_group.sort(key=lambda g: (-g[1], g[0]))
        inspection: dict[tuple[bool, bool], int] = {}
        if setting.pass_field:
            p = Params()
            inspected = (_inspected(ws, filters, setting, p) if hours is None
                         else _summed_inspected(ws, filters, setting, hours, p))
            inspection = {(bool(f), bool(x)): n for f, x, n in self._rows(
                f"SELECT flagged, failed, sum(n) FROM ({inspected}) GROUP BY flagged, failed{settings}", p)}
        return Counts(int(total), confusion, over_time, by_group, calibration, inspection)
