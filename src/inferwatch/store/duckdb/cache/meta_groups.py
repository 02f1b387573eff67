"""The comparison table grouped by a metadata field, read without joining the inferences to it.

The inferences that have the field are read from their copies beside the metadata
(`meta_copies.py`): for a window's whole hours, from the copies' sums per hour, value, model and
device (each value's p95 then from the sketch's buckets), for its partial hours from the copies.
Those without it (the `null` group, often most of them) are the window's
inferences less the copies, figure by figure:

- counts and sums: the window's, from the per-hour sums where they answer, less the copies';
- devices: those with more inferences in the window than among the copies;
- last seen: the newest hour with more inferences than copies, then that hour's times less the
  copies' times;
- the 95th percentile of times: both sides' times counted in the sketch's buckets
  (`store/sketch.py`), the window's from the per-hour sums where they answer, the copies' taken
  away bucket by bucket;
- class mix: the window's inferences per class less the copies'.

Every count and sum equals a full join's: the copies of a window are a sub-multiset of its rows,
with the same values; the percentiles read from buckets are within the sketch's
ALPHA of it.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import duckdb

from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store import sketch
from inferwatch.store.duckdb.cache import Caches
from inferwatch.store.duckdb.cache.meta_filter import SUM_COLUMNS, SUM_EDGES, copies_where, copy_sums
from inferwatch.store.duckdb.cache.sums import rows_per_class, time_buckets
from inferwatch.store.duckdb.sql import Params, transaction, where
from inferwatch.store.hours import next_hour
from inferwatch.store.rows import ranked_classes

_P95 = 0.95


class _Host(Protocol):
    _caches: Caches

    def _summed_inferences(self, ws: int, filters: Filters, hours: tuple[datetime, datetime] | None,
                           p: Params) -> str: ...


@dataclass
class _Copies:
    """The field's copies of the filters' inferences: what they hold, per value and in all."""

    ws: int
    filters: Filters
    name: str
    per_value: list[tuple[Any, ...]] = field(default_factory=list)
    mix: dict[Any, Counter[str]] = field(default_factory=dict)
    devices: Counter[Any] = field(default_factory=Counter)
    hours: Counter[datetime] = field(default_factory=Counter)
    bins: Counter[int] = field(default_factory=Counter)

    def where(self, p: Params) -> str:
        """The terms selecting them (alias `f`). The copies hold every column a filter reads but
        the predictions: the filters have no confidence terms."""
        return copies_where(self.ws, MetaTerm(self.name), self.filters, p, "f")


def group_rows(host: _Host, con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, name: str,
               top_classes: int) -> list[tuple[Any, ...]]:
    """(value, inferences, avg confidence, avg time, p95 time, predictions, devices, last seen,
    classes) per value of the field `name`, the inferences without it last as value None. For
    filters without confidence terms: with them, each scan of the rows here would test every
    prediction again, and one join pass is quicker."""
    host._caches.ready_copies(con, ws, filters)
    # The sums count inferences per class, not those holding one of several classes.
    hours = None if filters.classes else host._caches.summed_hours(filters)
    window = Params()
    parts = host._summed_inferences(ws, filters, hours, window)  # brings the sums up to date first
    copies = _Copies(ws, filters, name)
    with transaction(con):  # one snapshot for every read below, so the two sides agree
        if hours is None:
            _read_copies(con, copies)
        else:
            _read_copy_sums(con, copies, hours)
        rest = _without_field(con, ws, filters, hours, (parts, window), copies, top_classes)
    rows = [(value, n, conf / preds if preds else None, t_sum / timed if timed else None, p95, preds,
             devices, last, ranked_classes(copies.mix.get(value, Counter()), top_classes))
            for value, n, conf, preds, timed, t_sum, p95, devices, last in copies.per_value]
    if rest is not None:
        rows.append(rest)
    rows.sort(key=lambda r: (-r[1], r[0] is None, r[0] or ""))
    return rows


def _read_copies(con: duckdb.DuckDBPyConnection, copies: _Copies) -> None:
    p = Params()
    copies.per_value = con.execute(
        "SELECT field_value, count(*), sum(sum_confidence), sum(n_predictions), count(inference_time),"
        f" sum(inference_time), quantile_cont(inference_time, {p.add(_P95)}), count(DISTINCT device_id), max(ts)"
        f" FROM metadata_facts f WHERE {copies.where(p)} GROUP BY 1", p).fetchall()
    p = Params()
    for value, c, n in con.execute(
            f"SELECT field_value, c, count(*) FROM (SELECT field_value, unnest(classes) AS c FROM metadata_facts f"
            f" WHERE {copies.where(p)}) GROUP BY ALL", p).fetchall():
        copies.mix.setdefault(value, Counter())[c] = n
    # Per device, hour and time bin, in one pass.
    p = Params()
    for grouping, device, hour, b, n in con.execute(
            f"SELECT GROUPING(device_id, hour, b), device_id, hour, b, count(*) FROM (SELECT device_id, hour,"
            f" {sketch.time_bucket_sql('inference_time')} AS b FROM metadata_facts f WHERE {copies.where(p)})"
            " GROUP BY GROUPING SETS ((device_id), (hour), (b))", p).fetchall():
        if grouping == 0b011:
            copies.devices[device] = n
        elif grouping == 0b101:
            copies.hours[hour] = n
        else:
            copies.bins[b] = n  # rows without a time count under None, never looked up


def _copy_sums(copies: _Copies, hours: tuple[datetime, datetime], p: Params, table: str, columns: str,
               edge_columns: str, edge_terms: str = "") -> str:
    """`meta_filter.copy_sums` of every value of the field."""
    return copy_sums(copies.ws, MetaTerm(copies.name), copies.filters, hours, p, table, columns, edge_columns,
                     edge_terms)


def _read_copy_sums(con: duckdb.DuckDBPyConnection, copies: _Copies, hours: tuple[datetime, datetime]) -> None:
    """What `_read_copies` reads, from the copies' sums per hour (`meta_copies.SUMMARIZE_HOURS`)
    for the whole hours: counts and sums exact, each value's p95 from the bucketed times
    (`store/sketch.py`)."""
    p = Params()
    found = con.execute(
        "SELECT GROUPING(field_value, device_id, hour), field_value, device_id, hour, sum(n), sum(confidence_sum),"
        " sum(n_predictions), sum(n_timed), sum(time_sum), count(DISTINCT device_id), max(last_ts)"
        f" FROM {_copy_sums(copies, hours, p, 'meta_hours', SUM_COLUMNS, SUM_EDGES)}"
        " GROUP BY GROUPING SETS ((field_value), (device_id), (hour))", p).fetchall()
    p = Params()
    buckets: dict[Any, list[tuple[int, int]]] = {}
    times = _copy_sums(copies, hours, p, "meta_time_hours", "field_value, bucket, n",
                       f"field_value, {sketch.time_bucket_sql('f.inference_time')}, 1",
                       " AND f.inference_time IS NOT NULL")
    for value, k, n in con.execute(f"SELECT field_value, bucket, sum(n) FROM {times} GROUP BY ALL", p).fetchall():
        buckets.setdefault(value, []).append((k, int(n)))
        copies.bins[k] += int(n)
    for grouping, value, device, hour, n, conf, preds, timed, t_sum, devices, last in found:
        if grouping == 0b011:
            copies.per_value.append((value, int(n), conf, int(preds), int(timed), t_sum,
                                     sketch.quantile(buckets.get(value, []), _P95), devices, last))
        elif grouping == 0b101:
            copies.devices[device] = int(n)
        else:
            copies.hours[hour] = int(n)
    p = Params()
    classes = _copy_sums(copies, hours, p, "meta_class_hours", "field_value, class, n",
                         "field_value, unnest(classes) AS class, 1")
    for value, c, n in con.execute(f"SELECT field_value, class, sum(n) FROM {classes} GROUP BY ALL", p).fetchall():
        copies.mix.setdefault(value, Counter())[c] = int(n)


def _without_field(con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, hours: tuple[datetime, datetime] | None,
                   parts: tuple[str, Params], copies: _Copies, top_classes: int) -> tuple[Any, ...] | None:
    """The row of the inferences without the field: the window's less the copies'. A sweep
    between making the copies and reading them could leave more copies than rows somewhere;
    a figure that cannot be found then is None rather than an error."""
    n = preds = timed = 0
    conf = t_sum = 0.0
    devices: Counter[Any] = Counter()
    per_hour: Counter[datetime] = Counter()
    # Per device and per hour: the two sets together are a few hundred rows, where rows per
    # device and hour would be tens of thousands to fetch.
    for by_device, device, hour, n_, preds_, conf_, timed_, t_sum_ in con.execute(
            "SELECT GROUPING(hour) = 1, device_id, hour, sum(n), sum(n_predictions), sum(confidence_sum),"
            f" sum(n_timed), sum(time_sum) FROM (SELECT device_id, date_trunc('hour', hour) AS hour, n,"
            f" n_predictions, confidence_sum, n_timed, time_sum FROM {parts[0]})"
            " GROUP BY GROUPING SETS ((device_id), (hour))", parts[1]).fetchall():
        if by_device:
            n, preds, conf, timed, t_sum = n + n_, preds + preds_, conf + conf_, timed + timed_, t_sum + t_sum_
            devices[device] = n_
        else:
            per_hour[hour] = n_
    for _, n_, conf_, preds_, timed_, t_sum_, *_ in copies.per_value:
        n, preds, conf, timed, t_sum = n - n_, preds - preds_, conf - conf_, timed - timed_, t_sum - (t_sum_ or 0)
    if n <= 0:
        return None
    newest = max((h for h, k in per_hour.items() if k > copies.hours[h]), default=None)
    last = None
    if newest is not None:
        p, q = Params(), Params()
        last = max(_less(
            con.execute(f"SELECT ts FROM inferences i WHERE {where(ws, filters, p, 'i')} AND i.ts >= {p.add(newest)}"
                        f" AND i.ts < {p.add(next_hour(newest))}", p).fetchall(),
            con.execute(f"SELECT ts FROM metadata_facts f WHERE {copies.where(q)} AND f.hour = {q.add(newest)}",
                        q).fetchall()), default=None)
    p95 = _p95_less(con, ws, filters, hours, copies) if timed > 0 else None
    p = Params()
    if hours is None:
        classes = con.execute(f"SELECT c, count(*) FROM (SELECT unnest(i.classes) AS c FROM inferences i"
                              f" WHERE {where(ws, filters, p, 'i')}) GROUP BY 1", p).fetchall()
    else:
        classes = [(c, k) for _, c, k in con.execute(rows_per_class(ws, filters, hours, p), p).fetchall()]
    mix_less = Counter({c: int(k) for c, k in classes})
    for counts in copies.mix.values():
        mix_less.subtract(counts)
    in_devices = sum(1 for d, k in devices.items() if d is not None and k > copies.devices[d])
    return (None, n, conf / preds if preds else None, t_sum / timed if timed else None, p95, preds,
            in_devices, last, ranked_classes(mix_less, top_classes))


def _less(rows: list[tuple[Any, ...]], taken: list[tuple[Any, ...]]) -> list[Any]:
    """The first column of `rows` less that of `taken` (a sub-multiset of it)."""
    left = Counter(r[0] for r in rows)
    left.subtract(r[0] for r in taken)
    return [value for value, k in left.items() for _ in range(k)]


def _p95_less(con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, hours: tuple[datetime, datetime] | None,
              copies: _Copies) -> float | None:
    """The 95th percentile of the times of the window's inferences less the copies', from their
    bucketed times (`store/sketch.py`: within its ALPHA of `quantile_cont`): the window's from
    the per-hour sums where they answer."""
    p = Params()
    if hours is not None:
        query = time_buckets(ws, filters, hours, p)
    else:
        query = (f"SELECT NULL, {sketch.time_bucket_sql('i.inference_time')}, count(*) FROM inferences i"
                 f" WHERE {where(ws, filters, p, 'i')} AND i.inference_time IS NOT NULL GROUP BY ALL")
    return sketch.quantile([(k, int(n) - copies.bins[k]) for _, k, n in con.execute(query, p).fetchall()], _P95)


def series_rows(host: _Host, con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, field: str,
                bucket: timedelta) -> list[tuple[Any, ...]]:
    """(bucket start, value, count, predictions, avg time, avg confidence) per time bucket and
    value of the field, None for the inferences without it, ordered as the series are; all
    sums, so the group without the field is each bucket's sums less its copies'."""
    host._caches.ready_copies(con, ws, filters)
    hours = None if filters.classes else host._caches.summed_hours(filters, bucket)
    p = Params()
    size = p.add(bucket)
    window_sums = host._summed_inferences(ws, filters, hours, p)
    copies = _Copies(ws, filters, field)
    # The copies' sums: per hour for the whole hours (the partial ones' copies as rows of one).
    copy_rows = (f"(SELECT {SUM_EDGES.replace(', hour,', ', ts AS hour,')} FROM metadata_facts f"
                 f" WHERE {copies.where(p)})" if hours is None
                 else _copy_sums(copies, hours, p, "meta_hours", SUM_COLUMNS, SUM_EDGES.replace(", hour,", ", ts,")))
    return con.execute(
        f"WITH window_sums AS (SELECT time_bucket({size}, hour) AS t, sum(n) AS n, sum(n_predictions) AS p,"
        " sum(confidence_sum) AS c, sum(n_timed) AS nt, sum(time_sum) AS s"
        f" FROM {window_sums} GROUP BY 1),"
        f" copy_sums AS (SELECT time_bucket({size}, hour) AS t, field_value AS g, sum(n) AS n,"
        " sum(n_predictions) AS p, sum(confidence_sum) AS c, sum(n_timed) AS nt, sum(time_sum) AS s"
        f" FROM {copy_rows} AS f({SUM_COLUMNS}) GROUP BY ALL),"
        " rest AS (SELECT w.t, NULL AS g, any_value(w.n) - coalesce(sum(c.n), 0) AS n,"
        " any_value(w.p) - coalesce(sum(c.p), 0) AS p, any_value(w.c) - coalesce(sum(c.c), 0) AS c,"
        " any_value(w.nt) - coalesce(sum(c.nt), 0) AS nt, any_value(w.s) - coalesce(sum(c.s), 0) AS s"
        " FROM window_sums w LEFT JOIN copy_sums c ON c.t = w.t GROUP BY w.t)"
        " SELECT t, g, n, p, s / nullif(nt, 0), c / nullif(p, 0) FROM"
        " (SELECT * FROM copy_sums UNION ALL BY NAME SELECT * FROM rest WHERE n > 0) ORDER BY 1, 2 NULLS LAST",
        p).fetchall()
