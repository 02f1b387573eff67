"""Figures of inferences filtered by a metadata value, read from the metadata copies.

A filter such as `meta.factory=mexico` selected its inferences by a semi-join of every inference
of the window into the field's values: the whole window's rows were read for a fifth of them.
The copies beside the metadata (`meta_copies.py`) hold one row per inference and field with the
inference's summary columns and the value's text and number, so the inferences a term on a field
selects (a value, a range, a value excluded) are exactly the copies of that field meeting it:
they are read instead, and the window's rows are not.

A term on the value's text alone (`factory=mexico`, `factory≠canada`, the field merely there),
with no other term the sums do not know, is answered from the copies' sums per hour, value,
model and device for the window's whole hours (`copy_sums`), and from the copies themselves for
its partial first and last hours: a month is then thousands of summed rows, not millions of
copies. Counts and sums are the scan's; percentiles come from the bucketed times
(`store/sketch.py`, within its ALPHA), as for a window without metadata terms.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any

import duckdb

from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store import sketch
from inferwatch.store.duckdb.cache import Caches
from inferwatch.store.duckdb.cache.sums import sums_where
from inferwatch.store.duckdb.sql import Params, where
from inferwatch.store.rows import naive_utc
from inferwatch.store.terms import meta_terms

Hours = tuple[datetime, datetime]

# The copies' sums per hour (`meta_copies.SUMMARIZE_HOURS`' `meta_hours`), and a copy of a partial
# hour as the same columns, one inference each.
SUM_COLUMNS = "field_value, model_id, device_id, hour, n, n_predictions, confidence_sum, n_timed, time_sum, last_ts"
SUM_EDGES = ("field_value, model_id, device_id, hour, 1, n_predictions, sum_confidence,"
             " (inference_time IS NOT NULL)::BIGINT, coalesce(inference_time, 0), ts")


def copies_term(filters: Filters) -> tuple[MetaTerm, Filters] | None:
    """The first metadata term (the copies carry each value's text and number, so any term
    selects them as it selects the field's metadata rows) and the filters without it, or None.
    The other terms, metadata ones included, apply to the copies as they would to the rows."""
    if not filters.meta:
        return None
    return filters.meta[0], dataclasses.replace(filters, meta=filters.meta[1:])


def copies_where(ws: int, term: MetaTerm, rest: Filters, p: Params, alias: str) -> str:
    """The terms selecting the copies (as `alias`) of the inferences the filters select."""
    return (f"{alias}.field_name = {p.add(term.field)}{meta_terms(term, p, alias)}"
            f" AND {where(ws, rest, p, alias)}")


def copy_keys(ws: int, term: MetaTerm, window: Filters, p: Params) -> str:
    """`SELECT key` of the copies meeting the term in the window's time (a semi-join for the
    inferences' `key`): the copies are written in time order within each field, so their row
    groups' time bounds skip what lies outside it."""
    bounds = "".join(f" AND f.ts {op} {p.add(naive_utc(t))}" for op, t in ((">=", window.start), ("<", window.end))
                     if t is not None)
    return (f"SELECT f.key FROM metadata_facts f WHERE f.ws = {p.add(ws)} AND f.field_name = {p.add(term.field)}"
            f"{meta_terms(term, p, 'f')}{bounds}")


def summed_term(caches: Caches, filters: Filters, bucket: timedelta | None = None
                ) -> tuple[MetaTerm, Filters, Hours] | None:
    """The filters' one metadata term, the filters without it and the whole hours the copies'
    sums answer for; or None. The sums hold each value's text, not its number, and know model
    and device but not class (nor tags or confidence, which the sums of the window refuse)."""
    found = copies_term(filters) if caches.copies_serve(filters) else None
    if found is None:
        return None
    term, rest = found
    if rest.meta or rest.classes or term.numbers or term.bounds or term.not_numbers:
        return None
    hours = caches.summed_hours(rest, bucket)
    return None if hours is None else (term, rest, hours)


def copy_sums(ws: int, term: MetaTerm, rest: Filters, hours: Hours, p: Params, table: str, columns: str,
              edge_columns: str, edge_terms: str = "") -> str:
    """A subquery of the copies' sums per hour (`table` of `meta_copies.SUMMARY_TABLES`, its
    `columns`) meeting the term for the whole `hours`, and of the copies of the partial first and
    last hours as the same columns (`edge_columns` of `metadata_facts f`). `rest` holds no
    metadata, class, tag or confidence terms (`summed_term`)."""
    lo, hi = hours
    return (f"(SELECT {columns} FROM {table} WHERE field_name = {p.add(term.field)}{meta_terms(term, p)}"
            f" AND {sums_where(ws, rest, hours, p)}"
            f" UNION ALL SELECT {edge_columns} FROM metadata_facts f WHERE {copies_where(ws, term, rest, p, 'f')}"
            f" AND (f.ts < {p.add(lo)} OR f.ts >= {p.add(hi)}){edge_terms})")


def summed_totals(con: duckdb.DuckDBPyConnection, ws: int, term: MetaTerm, rest: Filters,
                  hours: Hours) -> tuple[Any, ...]:
    """The totals' row (`DuckDBStore.totals`) of the inferences meeting the term, from the copies'
    sums: counts and sums exact, the median and p95 from the bucketed times."""
    p = Params()
    row = con.execute(
        "SELECT coalesce(sum(n), 0), coalesce(sum(n_predictions), 0), sum(time_sum) / nullif(sum(n_timed), 0),"
        " sum(confidence_sum) / nullif(sum(n_predictions), 0), count(DISTINCT device_id), count(DISTINCT model_id)"
        f" FROM {copy_sums(ws, term, rest, hours, p, 'meta_hours', SUM_COLUMNS, SUM_EDGES)}", p).fetchone()
    assert row is not None
    p = Params()
    times = copy_sums(ws, term, rest, hours, p, "meta_time_hours", "bucket, n",
                      f"{sketch.time_bucket_sql('f.inference_time')}, 1", " AND f.inference_time IS NOT NULL")
    buckets = [(k, int(n)) for k, n in con.execute(f"SELECT bucket, sum(n) FROM {times} GROUP BY 1", p).fetchall()]
    return (*row[:3], [sketch.quantile(buckets, 0.5), sketch.quantile(buckets, 0.95)], *row[3:])


def summed_series(con: duckdb.DuckDBPyConnection, ws: int, term: MetaTerm, rest: Filters, hours: Hours,
                  bucket: timedelta, group_by: str | None) -> list[tuple[Any, ...]]:
    """(bucket start, model or device or None, count, predictions, avg time, avg confidence) of
    the inferences meeting the term, from the copies' sums; `bucket` is whole hours."""
    p = Params()
    found = copy_sums(ws, term, rest, hours, p, "meta_hours", SUM_COLUMNS, SUM_EDGES.replace(", hour,", ", ts,"))
    return con.execute(
        f"SELECT time_bucket({p.add(bucket)}, hour), {group_by or 'NULL'} AS g, sum(n),"
        " coalesce(sum(n_predictions), 0), sum(time_sum) / nullif(sum(n_timed), 0),"
        f" sum(confidence_sum) / nullif(sum(n_predictions), 0) FROM {found} GROUP BY ALL ORDER BY 1, 2 NULLS LAST",
        p).fetchall()
