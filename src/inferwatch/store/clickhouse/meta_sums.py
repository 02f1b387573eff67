"""The per-hour sums per metadata value (schema migration 15): the figures `hour_sums` holds per
hour, model, device and task, split by one field's value (its text and number; NULL for the
inferences without the field), and the inferences holding each class per value, so grouping a
month by a field, filtering it by the field's values (texts, numbers, ranges, exclusions), or
taking the field's numeric figures, reads the sums instead of joining every inference of the
month to its metadata. Made the same way (`_Sums`): measured accuracy's verdict sums of a label
or pass/fail field, alone or by a grouping field's values (migration 16), and a numeric field's
figures by a second field's values (migration 18). Filtered by one field and grouped or figured
by another still joins.

As with the per-class sums (`class_sums.py`), reads make them and ingest never writes them, one
field (or pair of fields) at a time, as a read needs it. An hour is made again when either side
of the join changed: the inferences (the figures `hour_sums` gives for the hour) or the fields'
metadata rows of the hour's inferences (their count and latest write time, from the aggregate
projection `field_hours`, migration 17), or their rows whose inference has no one known time
(`schema.NO_TIME`), which any hour may join. A metadata write always carries a newer write
time, and a merge or a delete changes the count, so no change goes unseen. Made rows are
stamped, and a read takes only the stamp its hour's check names, as for the per-class sums.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.query.performance import DEFAULT_BINS
from inferwatch.store.clickhouse import made
from inferwatch.store.clickhouse.made import Hours
from inferwatch.store.clickhouse.schema import NO_TIME, TIME_BUCKETS
from inferwatch.store.clickhouse.sql import Params, metadata_rows, where
from inferwatch.store.clickhouse.summaries import row_bucket
from inferwatch.store.hours import summed_hours
from inferwatch.store.terms import field_rows, meta_terms, number_joins

# What an hour's check records: the inferences' figures, the field's rows of the hour, its rows
# at NO_TIME.
_CHECKED = "n, n_predictions, last_ts, confidence_sum, meta_n, meta_last, untimed_n, untimed_last"
# The figures of an hour with no inferences and no metadata rows.
_NOTHING = (*made.NO_INFERENCES, 0, None, 0, None)


def field_of(filters: Filters, group_by: str | None, bucket: timedelta | None = None,
             numeric: str | None = None) -> str | None:
    """The one field whose sums can answer these filters, this grouping and these `numeric`
    figures, or None: every metadata term is on that field, the grouping is that field, model,
    device or none, the figures are that field's, and nothing else rules the sums out (a tag,
    class or confidence term, a window without whole hours, a `bucket` not of whole hours)."""
    grouped = group_by.removeprefix("meta.") if group_by and group_by.startswith("meta.") else None
    if group_by not in (None, "model_id", "device_id") and grouped is None:
        return None  # by class: counted per prediction
    fields = {t.field for t in filters.meta} | {f for f in (grouped, numeric) if f}
    if len(fields) != 1 or filters.classes or summed_hours(_without_meta(filters), bucket) is None:
        return None
    return fields.pop()


def group_column(group_by: str | None) -> str:
    """The column of `summed`'s rows that `group_by` names: the value for the field itself."""
    return "value" if group_by and group_by.startswith("meta.") else group_by or "NULL"


def _without_meta(filters: Filters) -> Filters:
    return replace(filters, meta=())


def hours_of(filters: Filters) -> Hours:
    hours = summed_hours(_without_meta(filters))
    assert hours is not None, "field_of said these filters have whole hours"
    return hours


def _values(filters: Filters, p: Params, alias: str = "") -> str:
    """The filters' metadata terms (all on the one field) on rows of its `field_value` and
    `field_number` (as `alias`, if named): the field is there, and each term's conditions hold."""
    a = f"{alias}." if alias else ""
    return "".join(f" AND {a}field_value IS NOT NULL{meta_terms(t, p, alias)}" for t in filters.meta)


def _made(ws: int, field: str, filters: Filters, hours: Hours, p: Params) -> str:
    """The terms selecting the made rows of the whole `hours` in the filters."""
    return f"{made.current('meta_checks', ws, hours, p, field)}{made.key_terms(filters, p)}{_values(filters, p)}"


def _edges(ws: int, field: str, filters: Filters, hours: Hours, p: Params, columns: str, tail: str = "") -> str:
    """`SELECT columns` of the filters' inferences `i` of the window's partial first and last hours,
    each beside its value of `field` (`m.field_value`, `m.field_number`; NULL where it has none),
    for a UNION ALL; `tail` follows the FROM clause (an ARRAY JOIN). Each partial hour joins the
    metadata of its own window, read through the projection by field and time, not the whole
    table that a window of weeks would read."""
    parts = []
    for window in made.edges(filters, hours):
        edge = replace(window, meta=())
        values = field_rows(ws, field, p, "inference_id, field_value, field_number", metadata_rows(ws, edge, p))
        parts.append(f" UNION ALL SELECT {columns} FROM inferences i LEFT JOIN ({values}) m ON m.inference_id"
                     f" = i.inference_id{tail} WHERE {where(ws, edge, p, 'i')}{_values(filters, p, 'm')}")
    return "".join(parts)


def summed(ws: int, field: str, filters: Filters, hours: Hours, p: Params) -> str:
    """A subquery of (hour, value, number, model_id, device_id, task, n, n_preds, confidence_sum,
    n_timed, time_sum, last_ts, times), the columns of `summaries.summed` with the field's value
    (text and number) beside them: the made whole hours' sums, one row per inference of the
    partial ones, in the filters' metadata terms."""
    edges = _edges(ws, field, filters, hours, p,
                   "i.ts, m.field_value, m.field_number, i.model_id, i.device_id, i.task, 1, i.n_predictions,"
                   " i.sum_confidence, toUInt64(i.inference_time IS NOT NULL), ifNull(i.inference_time, 0), i.ts,"
                   f" {row_bucket('i.inference_time')}")
    return (
        "(SELECT toDateTime64(hour, 6, 'UTC') AS hour, field_value AS value, field_number AS number, model_id,"
        " device_id, task, n, n_preds, confidence_sum, n_timed, time_sum, last_ts, times"
        f" FROM meta_hours WHERE {_made(ws, field, filters, hours, p)}{edges})"
    )


def holding(ws: int, field: str, filters: Filters, hours: Hours, p: Params) -> str:
    """A subquery of (value, model_id, device_id, class, n) of the filters' inferences holding
    each class."""
    edges = _edges(ws, field, filters, hours, p, "m.field_value, i.model_id, i.device_id, c, 1",
                   " ARRAY JOIN i.classes AS c")
    return (
        f"(SELECT field_value AS value, model_id, device_id, class, n FROM meta_class_hours"
        f" WHERE {_made(ws, field, filters, hours, p)}{edges})"
    )


def numbers_by(ws: int, field: str, group: str, filters: Filters, hours: Hours, p: Params) -> str:
    """A subquery of (ts, g, n, number_sum, number_min, number_max) of the filters' inferences
    holding a number in `field`, `g` their value of `group`: the made whole hours' sums
    (`NUMBERS`), one row per inference of the partial ones."""
    parts = [f"SELECT toDateTime64(hour, 6, 'UTC') AS ts, group_value AS g, n, number_sum, number_min, number_max"
             f" FROM number_hours WHERE {made.current(NUMBERS.checks, ws, hours, p, field, group)}"
             f"{made.key_terms(filters, p)}"]
    for edge in made.edges(filters, hours):
        join, value = number_joins(ws, field, f"meta.{group}", p, "inference_id", metadata_rows(ws, edge, p))
        parts.append(f"SELECT i.ts, {value}, 1, v.field_number, v.field_number, v.field_number FROM inferences i{join}"
                     f" WHERE {where(ws, edge, p, 'i')}")
    return f"({' UNION ALL '.join(parts)})"


@dataclass(frozen=True, slots=True)
class _Sums:
    """One kind of per-field sums: its check table, the tables a making fills, and whether a
    making may split a field's rows by a second field's values too (`group_field`)."""

    checks: str
    tables: tuple[str, ...]
    grouped: bool = False


VALUES = _Sums("meta_checks", ("meta_hours", "meta_class_hours"))
# Measured accuracy's, for a field of labels or pass/fail values, alone or by a grouping field
# (`performance.py`).
VERDICTS = _Sums("verdict_checks", ("verdict_hours",), grouped=True)
# A numeric field's figures by a second field's values (`numeric.py`).
NUMBERS = _Sums("number_checks", ("number_hours",), grouped=True)
# The calibration's bins the verdict sums hold: the API's default.
VERDICT_BINS = DEFAULT_BINS
# Sums made of a field (and of a grouping field's values, or "" for none).
Key = tuple[str, str]


class MetaSums(made.Maker):
    """Keeps the sums of a field (or pair) of a read's whole hours current (`current_meta_hours`,
    `current_verdict_hours`, `current_number_hours`)."""

    # One making at a time in this process (the host makes it).
    _meta_lock: threading.Lock

    def current_meta_hours(self, ws: int, field: str, hours: Hours) -> None:
        """Makes again the hours of [lo, hi) of `field`'s per-value sums whose inferences or
        metadata changed since they were made, or that were never made."""
        self._current(ws, ((field, ""),), hours, VALUES)

    def current_verdict_hours(self, ws: int, keys: Sequence[Key], hours: Hours) -> None:
        """`current_meta_hours` for the verdict sums of each (field, grouping field or ""),
        checked together."""
        self._current(ws, tuple(dict.fromkeys(keys)), hours, VERDICTS)

    def current_number_hours(self, ws: int, field: str, group: str, hours: Hours) -> None:
        """`current_meta_hours` for the sums of numeric `field` by `group`'s values."""
        self._current(ws, ((field, group),), hours, NUMBERS)

    def _current(self, ws: int, keys: tuple[Key, ...], hours: Hours, kind: _Sums) -> None:
        with self._meta_lock:
            now = self._meta_figures(ws, keys, hours)
            p = Params()
            lo, hi = hours
            checks: dict[Key, dict[datetime, tuple[Any, ...]]] = {key: {} for key in keys}
            stamps: dict[Key, dict[datetime, datetime]] = {key: {} for key in keys}
            group = "group_field" if kind.grouped else "''"
            for field, grouped, hour, *figures, made_at in self._rows(
                    f"SELECT field, {group}, hour, {_CHECKED}, made_at FROM {kind.checks} FINAL"
                    f" WHERE ws = {p.add(ws, 'Int32')} AND field IN {p.add([f for f, _ in keys], 'Array(String)')}"
                    f" AND hour >= {p.time(lo)} AND hour < {p.time(hi)}", p):
                if (field, grouped) in checks:
                    checks[field, grouped][hour], stamps[field, grouped][hour] = tuple(figures), made_at
            for key in keys:
                made.remake(now[key], checks[key], stamps[key], _NOTHING, partial(self._make_meta_hours, ws, key, kind))

    def _meta_figures(self, ws: int, keys: tuple[Key, ...], hours: Hours) -> dict[Key, dict[datetime, tuple[Any, ...]]]:
        """Per key and whole hour, what its made rows depend on: the inferences' figures from
        `hour_sums`, the metadata rows of the hour of the key's field (and grouping field: their
        counts added, the latest of their writes) from the projection `field_hours`, and the same
        of their rows at NO_TIME, alike for every hour. An hour with none of the first
        two is left out. As every metadata write is later than those before it, and a merge or
        a delete changes a count, the two fields' figures together still tell every change."""
        fields = tuple(dict.fromkeys(f for key in keys for f in key if f))
        inferences = made.inference_figures(self._rows, ws, hours)
        lo, hi = hours
        p = Params()
        w, start, stop = p.add(ws, "Int32"), p.time(lo), p.time(hi)
        written: dict[str, dict[datetime, tuple[int, datetime]]] = {field: {} for field in fields}
        # From the projection `field_hours`: its terms are on its own keys.
        for field, hour, n, last in self._rows(
                "SELECT field_name, toStartOfHour(ts) AS hour, count(), max(updated_at) FROM metadata"
                f" WHERE ws = {w} AND field_name IN {p.add(list(fields), 'Array(String)')} AND hour >= {start}"
                f" AND hour < {stop} GROUP BY ws, field_name, hour", p):
            written[field][hour] = (n, last)
        p = Params()
        untimed = {field: (n, last) for field, n, last in self._rows(
            f"SELECT field_name, count(), max(updated_at) FROM metadata WHERE ws = {p.add(ws, 'Int32')}"
            f" AND field_name IN {p.add(list(fields), 'Array(String)')} AND ts = {NO_TIME} GROUP BY field_name", p)}

        def joined(figures: list[tuple[int, datetime | None]]) -> tuple[int, datetime | None]:
            lasts = [last for _, last in figures if last is not None]
            return sum(n for n, _ in figures), max(lasts) if lasts else None

        out: dict[Key, dict[datetime, tuple[Any, ...]]] = {}
        for key in keys:
            named = [f for f in key if f]
            hours_of_key = inferences.keys() | {hour for f in named for hour in written[f]}
            kept = joined([untimed.get(f, (0, None)) for f in named])
            out[key] = {hour: (*inferences.get(hour, made.NO_INFERENCES),
                               *joined([written[f].get(hour, (0, None)) for f in named]), *kept)
                        for hour in hours_of_key}
        return out

    def _make_meta_hours(self, ws: int, key: Key, kind: _Sums, hours: list[datetime], figures: dict[datetime, Any],
                         made_at: datetime, replaces: bool) -> None:
        """Makes these hours of `key` again from their rows, as `ClassSums._make_class_hours` does."""
        field, group = key
        window = Filters(start=hours[0], end=hours[-1] + timedelta(hours=1))
        p = Params()
        values = field_rows(ws, field, p, "inference_id, field_value, field_number", metadata_rows(ws, window, p))
        which = made.rows_of(ws, hours, p)
        grouping = ""
        if group:
            grouped = field_rows(ws, group, p, "inference_id, field_value", metadata_rows(ws, window, p))
            grouping = f" LEFT JOIN ({grouped}) g ON g.inference_id = i.inference_id"
        # The derived columns by name: `i.*` leaves out MATERIALIZED ones.
        rows = ("SELECT i.ws AS ws, i.ts AS ts, i.model_id AS model_id, i.device_id AS device_id, i.task AS task,"
                " i.n_predictions AS n_predictions, i.sum_confidence AS sum_confidence,"
                " i.inference_time AS inference_time, i.classes AS classes, i.max_confidence AS max_confidence,"
                " i.predictions.class AS predicted, i.predictions.confidence AS confidences,"
                f" m.field_value AS field_value, m.field_number AS field_number,"
                f" {'g.field_value' if group else 'NULL'} AS group_value FROM inferences i"
                f" LEFT JOIN ({values}) m ON m.inference_id = i.inference_id{grouping} WHERE {which}")
        stamp = p.time(made_at)
        f = p.add(field, "String")
        if kind is VALUES:
            self._command(
                f"INSERT INTO meta_hours SELECT ws, {f}, toStartOfHour(ts) AS hour, field_value, field_number,"
                " model_id, device_id, task, count(), sum(n_predictions), sum(sum_confidence), count(inference_time),"
                f" sum(ifNull(inference_time, 0)), max(ts), {TIME_BUCKETS}, {stamp} FROM ({rows})"
                " GROUP BY ws, hour, field_value, field_number, model_id, device_id, task", p)
            self._command(
                f"INSERT INTO meta_class_hours SELECT ws, {f}, toStartOfHour(ts) AS hour, field_value, field_number,"
                f" model_id, device_id, c, count(), {stamp} FROM ({rows}) ARRAY JOIN classes AS c"
                " GROUP BY ws, hour, field_value, field_number, model_id, device_id, c",
                p)
        elif kind is NUMBERS:
            self._command(
                f"INSERT INTO number_hours SELECT ws, {f}, {p.add(group, 'String')}, toStartOfHour(ts) AS hour,"
                " group_value, model_id, device_id, count(), sum(field_number), min(field_number), max(field_number),"
                f" {stamp} FROM ({rows}) WHERE field_number IS NOT NULL"
                " GROUP BY ws, hour, group_value, model_id, device_id", p)
        elif kind is VERDICTS and not group:
            # Per labelled inference, the columns `performance._labelled` reads of it (its top
            # class the first of its most confident predictions, as there).
            bins = p.add(VERDICT_BINS, "Int32")
            self._command(
                f"INSERT INTO verdict_hours SELECT ws, {f}, '', toStartOfHour(ts) AS hour, field_value, NULL, model_id,"
                " if(isNull(max_confidence), NULL, predicted[indexOf(confidences, max_confidence)]) AS top,"
                " has(classes, field_value) AS found, isNull(max_confidence) AS quiet, length(classes) > 1 AS several,"
                " if(length(classes) = 1, classes[1], NULL) AS lone,"
                f" if(isNull(max_confidence), NULL, least(toInt32(floor(max_confidence * {bins})), {bins} - 1)) AS bin,"
                f" count(), sum(ifNull(max_confidence, 0)), {stamp} FROM ({rows}) WHERE field_value IS NOT NULL"
                " GROUP BY ws, hour, field_value, model_id, top, found, quiet, several, lone, bin", p)
        else:  # VERDICTS by the grouping field's value: only what tells right from wrong
            self._command(
                f"INSERT INTO verdict_hours SELECT ws, {f}, {p.add(group, 'String')}, toStartOfHour(ts) AS hour,"
                " field_value, group_value, model_id, NULL, has(classes, field_value) AS found,"
                f" isNull(max_confidence) AS quiet, 0, NULL, NULL, count(), 0, {stamp} FROM ({rows})"
                " WHERE field_value IS NOT NULL GROUP BY ws, hour, field_value, group_value, model_id, found, quiet", p)
        grouped_by = ("group_field",) if kind.grouped else ()
        self._insert_rows(kind.checks, [(ws, field, *(group,) * kind.grouped, hour, *figures[hour], made_at)
                                        for hour in hours],
                          ("ws", "field", *grouped_by, "hour", *_CHECKED.split(", "), "made_at"))
        if replaces:
            for table in kind.tables:
                p = Params()
                self._command(made.older(table, ws, hours, made_at, p, field, group if kind.grouped else None), p)
