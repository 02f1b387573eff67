"""The per-hour sums per class (schema migration 14): predictions and the inferences holding
each class, per hour, model, device, class and server version, and the predictions' confidence
bins (`store/sketch.py`) per hour, model and class, so a month's class figures read thousands of
summed rows instead of unnesting every stored prediction.

Why not in `hour_sums`: a projection is written with every insert, and the class maps cost
ingest 10 % more on top of the projection's own 7 to 9 % (docs/performance.md), against a budget
of 10 % in all. So, as the DuckDB store does, the reads make them: a read first asks which of its
window's whole hours are not current and makes those again from the rows; ingest never writes
them.

Which hours are current is told by the projection itself: each made hour records `hour_sums`'
figures of its inferences at the time (count, predictions, latest time, the confidences' sum) in
`class_checks`, and an hour is made again once those differ from the projection's now. The
projection is rebuilt with its part by every insert, merge, TTL and mutation, so this sees every
change, from any writer or replica, and a restart needs nothing. (Rows swapped for others with
the same count, predictions, latest time and confidence sum in one hour would go unseen; nothing
here does that: a re-sent inference is skipped whole.)

Each making is stamped (`made_at`): its rows first, then its check; a read takes only the rows
of the stamp its hour's check names, so a making cut short, or two at once, never shows half an
hour, and the rows of older stamps are deleted after.
"""

from __future__ import annotations

import threading
from datetime import datetime
from functools import partial
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.store import sketch
from inferwatch.store.clickhouse import made
from inferwatch.store.clickhouse.made import Hours
from inferwatch.store.clickhouse.sql import PREDICTIONS, Params, prediction_terms, where

# The server version an inference names in `extra`, parsed only where it is named.
VERSION = ("if(position(ifNull(i.extra, ''), '\"inference_server_version\"') > 0,"
           " JSONExtract(ifNull(i.extra, ''), 'inference_server_version', 'Nullable(String)'), NULL)")
# The bin of predictions without a confidence, in the maps of bins.
NO_CONFIDENCE = -1
_BIN = f"ifNull({sketch.confidence_bin_sql('p_confidence')}, {NO_CONFIDENCE})"


def _edges(ws: int, filters: Filters, hours: Hours, p: Params) -> str:
    """The terms selecting the filters' inferences (alias `i`) of the window's partial hours."""
    lo, hi = hours
    return f"{where(ws, filters, p, 'i')} AND (i.ts < {p.time(lo)} OR i.ts >= {p.time(hi)})"


def predictions(ws: int, filters: Filters, hours: Hours, p: Params) -> str:
    """A subquery of (hour, model_id, device_id, class, n, n_confidence, confidence_sum, n_timed,
    time_sum) of the filters' predictions (no tag, metadata or confidence terms): the made whole
    hours' sums, and one row per prediction of the partial ones (`hour` is then its time).
    `n_timed` and `time_sum` count each prediction's inference time."""
    outer = f" AND {prediction_terms(filters, p)}" if filters.classes else ""
    return (
        "(SELECT hour, model_id, device_id, class, n, n_confidence, confidence_sum, n_timed, time_sum"
        f" FROM class_hours WHERE {made.current('class_checks', ws, hours, p)}{made.key_terms(filters, p)}"
        " UNION ALL SELECT i.ts, i.model_id, i.device_id, p_class, 1, toUInt64(p_confidence IS NOT NULL),"
        " ifNull(p_confidence, 0), toUInt64(i.inference_time IS NOT NULL), ifNull(i.inference_time, 0)"
        f" FROM inferences i{PREDICTIONS} WHERE {_edges(ws, filters, hours, p)}{outer})"
    )


def holding(ws: int, filters: Filters, hours: Hours, p: Params) -> str:
    """A subquery of (model_id, device_id, class, version, n) of the filters' inferences holding
    each class (no tag, metadata or confidence terms), `version` the server's they name."""
    outer = f" AND {prediction_terms(filters, p, 'c')}" if filters.classes else ""
    return (
        f"(SELECT model_id, device_id, class, version, n_inferences AS n FROM class_hours"
        f" WHERE {made.current('class_checks', ws, hours, p)}{made.key_terms(filters, p)}"
        f" UNION ALL SELECT i.model_id, i.device_id, c, {VERSION}, 1 FROM inferences i ARRAY JOIN i.classes AS c"
        f" WHERE {_edges(ws, filters, hours, p)}{outer})"
    )


def bins(ws: int, filters: Filters, hours: Hours, p: Params) -> str:
    """A subquery of (model_id, class, bins) of the filters' predictions, in filters of models
    and classes only (the bins know no device): maps of confidence bin
    (`sketch.confidence_bin_sql`; NO_CONFIDENCE for none) to predictions, which `sumMap` adds
    up; one row per made hour, model and class, one per prediction of the partial hours."""
    assert not filters.device_ids, "the confidence bins are per model and class"
    outer = f" AND {prediction_terms(filters, p)}" if filters.classes else ""
    return (
        f"(SELECT model_id, class, bins FROM class_bins"
        f" WHERE {made.current('class_checks', ws, hours, p)}{made.key_terms(filters, p, device=False)}"
        f" UNION ALL SELECT i.model_id, p_class, map({_BIN}, toUInt64(1)) FROM inferences i{PREDICTIONS}"
        f" WHERE {_edges(ws, filters, hours, p)}{outer})"
    )


class ClassSums(made.Maker):
    """Keeps the per-class sums of a read's whole hours current (`current_class_hours`)."""

    # One making at a time in this process (the host makes it).
    _class_lock: threading.Lock

    def current_class_hours(self, ws: int, hours: Hours) -> None:
        """Makes again the hours of [lo, hi) whose inferences changed since they were made, or
        that were never made. One making at a time in this process; another process making
        the same hours at once only makes them twice."""
        with self._class_lock:
            now = made.inference_figures(self._rows, ws, hours)
            p = Params()
            lo, hi = hours
            checks: dict[datetime, tuple[Any, ...]] = {}
            stamps: dict[datetime, datetime] = {}
            for hour, *figures, made_at in self._rows(
                    "SELECT hour, n, n_predictions, last_ts, confidence_sum, made_at FROM class_checks FINAL"
                    f" WHERE ws = {p.add(ws, 'Int32')} AND hour >= {p.time(lo)} AND hour < {p.time(hi)}", p):
                checks[hour], stamps[hour] = tuple(figures), made_at
            made.remake(now, checks, stamps, made.NO_INFERENCES, partial(self._make_class_hours, ws))

    def _make_class_hours(self, ws: int, hours: list[datetime], figures: dict[datetime, Any], made_at: datetime,
                          replaces: bool) -> None:
        """Makes these hours again from their rows: rows stamped `made_at`, then the checks
        (read before the rows, so a write in between leaves the hour stale, never wrong), then
        the older stamps' rows deleted."""
        p = Params()
        which = made.rows_of(ws, hours, p)
        stamp = p.time(made_at)
        self._command(
            "INSERT INTO class_hours SELECT ws, hour, model_id, device_id, class, version, count(),"
            " uniqExact(inference_id, image_index), count(p_confidence), sum(ifNull(p_confidence, 0)),"
            f" count(inference_time), sum(ifNull(inference_time, 0)), {stamp} FROM (SELECT i.ws AS ws,"
            " toStartOfHour(i.ts) AS hour, i.model_id AS model_id, i.device_id AS device_id, p_class AS class,"
            f" {VERSION} AS version, i.inference_id AS inference_id, i.image_index AS image_index, p_confidence,"
            f" i.inference_time AS inference_time FROM inferences i{PREDICTIONS} WHERE {which})"
            " GROUP BY ws, hour, model_id, device_id, class, version", p)
        self._command(
            f"INSERT INTO class_bins SELECT ws, hour, model_id, class, sumMap(map(bin, n)), {stamp}"
            " FROM (SELECT i.ws AS ws, toStartOfHour(i.ts) AS hour, i.model_id AS model_id, p_class AS class,"
            f" {_BIN} AS bin, count() AS n FROM inferences i{PREDICTIONS}"
            f" WHERE {which} GROUP BY ws, hour, model_id, class, bin)"
            " GROUP BY ws, hour, model_id, class", p)
        self._insert_rows("class_checks", [
            (ws, hour, *figures[hour], made_at) for hour in hours],
            ("ws", "hour", "n", "n_predictions", "last_ts", "confidence_sum", "made_at"))
        if replaces:
            for table in ("class_hours", "class_bins"):
                p = Params()
                self._command(made.older(table, ws, hours, made_at, p), p)

