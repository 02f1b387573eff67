"""What the per-hour sums the reads make share (`class_sums.py`, `meta_sums.py`): which hours of
a window changed since they were made, and the stamps that tell one making from another.

An hour is current while the figures it was made from equal those its inputs give now. The
inferences' side is the same for both: `hour_sums`' count, predictions, latest time and
confidences' sum per hour, which the projection keeps exact through every insert, merge, TTL
and delete.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.store.clickhouse.sql import Params
from inferwatch.store.rows import now_utc

Hours = tuple[datetime, datetime]
Rows = Callable[[str, dict[str, Any]], list[tuple[Any, ...]]]

# A list of hours as a bound parameter (`toStartOfHour` of a DateTime64 is a DateTime).
HOURS = "Array(DateTime('UTC'))"
# Hours made by one statement: a week's rows at a time, not a month's.
_HOURS_A_STATEMENT = 24 * 7
# The inferences' figures of an hour, as `inference_figures` gives them: none.
NO_INFERENCES = (0, 0, None, 0.0)
# Every table of made sums, each holding an `hour` column: the check tables first, so that a
# sweep cut short between them leaves rows no check names (which no read takes), never a check
# naming rows that are gone.
TABLES = ("class_checks", "meta_checks", "verdict_checks", "number_checks", "class_hours", "class_bins", "meta_hours",
          "meta_class_hours", "verdict_hours", "number_hours")


class Maker:
    """What a mixin that makes sums needs of its host store."""

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _command(self, sql: str, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def _insert_rows(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        raise NotImplementedError


def _key(ws: int, p: Params, field: str | None, group: str | None) -> str:
    """The terms selecting a made table's rows of the workspace (of `field`, for sums made per
    field, and by `group`, for those made per grouping field too)."""
    same = f"ws = {p.add(ws, 'Int32')}" + (f" AND field = {p.add(field, 'String')}" if field is not None else "")
    return same + (f" AND group_field = {p.add(group, 'String')}" if group is not None else "")


def current(checks: str, ws: int, hours: Hours, p: Params, field: str | None = None, group: str | None = None) -> str:
    """The terms selecting a made table's rows of the whole `hours` (of `field`, by `group`:
    `_key`) that the check table `checks` names: the latest making's stamp of each hour."""
    lo, hi = hours
    same = f"{_key(ws, p, field, group)} AND hour >= {p.time(lo)} AND hour < {p.time(hi)}"
    return f"{same} AND (hour, made_at) IN (SELECT hour, made_at FROM {checks} FINAL WHERE {same})"


def older(table: str, ws: int, hours: list[datetime], made_at: datetime, p: Params, field: str | None = None,
          group: str | None = None) -> str:
    """The DELETE of a made table's rows of these hours (of `field`, by `group`) stamped before
    `made_at`: what a making that replaced them leaves behind once its check is written."""
    return (f"DELETE FROM {table} WHERE {_key(ws, p, field, group)} AND hour IN {p.add(hours, HOURS)}"
            f" AND made_at < {p.time(made_at)}")


def rows_of(ws: int, hours: list[datetime], p: Params) -> str:
    """The terms selecting inferences `i` of these whole hours: their time range first, which
    the engine skips parts and granules by, then the hours themselves."""
    return (f"i.ws = {p.add(ws, 'Int32')} AND i.ts >= {p.time(hours[0])}"
            f" AND i.ts < {p.time(hours[-1] + timedelta(hours=1))} AND toStartOfHour(i.ts) IN {p.add(hours, HOURS)}")


Make = Callable[[list[datetime], dict[datetime, tuple[Any, ...]], datetime, bool], None]


def remake(now: dict[datetime, tuple[Any, ...]], checks: dict[datetime, tuple[Any, ...]],
           stamps: dict[datetime, datetime], empty: tuple[Any, ...], make: Make) -> None:
    """Makes again, a week at a time, the hours whose figures `now` differ from the `checks` they
    were made from (or that were never made): `make(hours, their figures now, stamp, whether
    it replaces earlier makings)`. An hour missing from `now` has the `empty` figures."""
    for chunk, made_at in _makings(_stale(now, checks, empty), stamps):
        make(chunk, {hour: now.get(hour, empty) for hour in chunk}, made_at, any(hour in stamps for hour in chunk))


def key_terms(filters: Filters, p: Params, *, device: bool = True) -> str:
    """The filters' model, device (unless not `device`) and class terms on a made table's own
    columns, each led by AND."""
    return "".join(f" AND {column} IN {p.add(list(values), 'Array(String)')}"
                   for column, values in (("model_id", filters.model_ids),
                                          ("device_id", filters.device_ids if device else ()),
                                          ("class", filters.classes)) if values)


def edges(filters: Filters, hours: Hours) -> list[Filters]:
    """The filters of the window's partial first and last hours, those not empty: what a read
    takes from the rows beside the made sums of the whole `hours`."""
    lo, hi = hours
    parts = []
    for start, end in ((filters.start, lo), (hi, filters.end)):
        assert start is not None and end is not None, "a window of whole hours has both ends"
        if start.replace(tzinfo=None) < end.replace(tzinfo=None):
            parts.append(replace(filters, start=start, end=end))
    return parts


def inference_figures(rows: Rows, ws: int, hours: Hours) -> dict[datetime, tuple[Any, ...]]:
    """Per whole hour of [lo, hi) holding inferences: (count, predictions, latest time,
    confidences' sum), from `hour_sums` (the inner query groups as the projection does, so the
    engine reads it, not the rows)."""
    p = Params()
    lo, hi = hours
    return {hour: tuple(figures) for hour, *figures in rows(
        "SELECT hour, sum(n), sum(k), max(last), sum(c) FROM (SELECT toStartOfHour(ts) AS hour, count() AS n,"
        " sum(n_predictions) AS k, max(ts) AS last, sum(sum_confidence) AS c FROM inferences"
        f" WHERE ws = {p.add(ws, 'Int32')} AND hour >= {p.time(lo)} AND hour < {p.time(hi)}"
        " GROUP BY ws, model_id, device_id, task, hour) GROUP BY hour", p)}


def _stale(now: dict[datetime, tuple[Any, ...]], made: dict[datetime, tuple[Any, ...]],
          empty: tuple[Any, ...]) -> list[datetime]:
    """The hours whose figures now differ from those they were made from (an hour missing from
    `now` has the `empty` figures; one missing from `made` was never made), in order."""
    return sorted(hour for hour in now.keys() | made.keys()
                  if hour not in made or not _same(now.get(hour, empty), made[hour]))


def _same(now: Sequence[Any], made: Sequence[Any]) -> bool:
    """Equal figures, the confidences' sum (the fourth) to 12 digits: merges may add it up in
    another order."""
    return (len(now) == len(made) and all(a == b for i, (a, b) in enumerate(zip(now, made, strict=True)) if i != 3)
            and math.isclose(now[3], made[3], rel_tol=1e-12, abs_tol=1e-9))


def _makings(hours: list[datetime], stamps: dict[datetime, datetime]) -> Iterator[tuple[list[datetime], datetime]]:
    """The stale hours a week at a time, each week with its stamp: now, and after every stamp it
    replaces, should the clock have stepped back (a read takes the latest stamp's rows)."""
    for at in range(0, len(hours), _HOURS_A_STATEMENT):
        chunk = hours[at:at + _HOURS_A_STATEMENT]
        yield chunk, max([now_utc(), *(stamps[h] + timedelta(microseconds=1) for h in chunk if h in stamps)])
