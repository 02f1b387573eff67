"""Filters compiled to ClickHouse SQL. User input only ever travels as bound parameters.

ClickHouse binds parameters on the server side (`{name:Type}` in the text, values sent apart), so
`Params` hands out a fresh name for every value and remembers it; the SQL text is built only from
column names and these placeholders. Each function mirrors its DuckDB twin in `store/duckdb/sql.py`
term for term, so both backends select the same rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from inferwatch.query.filters import Filters
from inferwatch.store.clickhouse.schema import NO_TIME
from inferwatch.store.rows import naive_utc, now_utc
from inferwatch.store.terms import field_rows, inference_terms

# What a DateTime64 holds. Stored times lie in 2000..2100 (ingest checks), so clamping a filter's
# bound into this range changes no answer, where an unclamped year-1 bound would not bind.
_MIN_TIME = datetime(1900, 1, 1)
_MAX_TIME = datetime(2299, 12, 31)
# The widest window whose metadata is read through the projection by field and time (an open
# end counts to now); a wider one reads the table with FINAL (`metadata_rows`).
WINDOWED_METADATA = timedelta(days=14)


class Params(dict[str, Any]):
    """Bound parameters of one statement; `add` returns the placeholder to put in the SQL."""

    def add(self, value: Any, type_: str) -> str:
        name = f"p{len(self)}"
        self[name] = value
        return f"{{{name}:{type_}}}"

    # `terms.Binder`
    def text(self, value: str) -> str:
        return self.add(value, "String")

    def workspace(self, ws: int) -> str:
        return self.add(ws, "Int32")

    def number(self, value: float) -> str:
        return self.add(value, "Float64")

    def texts(self, values: Sequence[str]) -> str:
        return self.add(list(values), "Array(String)")

    def numbers(self, values: Sequence[float]) -> str:
        return self.add(list(values), "Array(Float64)")

    def time(self, value: datetime) -> str:
        naive = value.replace(tzinfo=None) if value.tzinfo is None else value.astimezone(None).replace(tzinfo=None)
        return self.add(min(max(naive, _MIN_TIME), _MAX_TIME), "DateTime64(6, 'UTC')")


def metadata_rows(ws: int, f: Filters, p: Params) -> str:
    """The workspace's metadata as its latest writes left it, as a table of (ws, inference_id,
    field_name, field_value, field_number) holding every row the inferences of `f`'s window can
    match, for a semi-join or a join on them.

    For a window of up to two weeks: the rows of the inferences that can lie in it (their time in
    it, or no one known time: `schema.NO_TIME`), read through the projection by field and time,
    each field's latest write taken by its write time (a caller's field term reaches the
    projection through the GROUP BY). Otherwise the whole table with FINAL, which reads a row more
    cheaply than the GROUP BY does and can skip granules by the value's index: at 10 million
    inferences a day's field values came in 24 ms this way against 170 to 340 with FINAL, a
    week's in 94, but 30 days' in 442 against 127 to 337 (docs/performance.md)."""
    if f.start is None or naive_utc(f.end or now_utc()) - naive_utc(f.start) > WINDOWED_METADATA:
        return "metadata FINAL"
    window = [f"ts >= {p.time(f.start)}"] + ([f"ts < {p.time(f.end)}"] if f.end is not None else [])
    # argMax passes over NULLs, and a later text has no number: whether the latest number is NULL
    # is taken apart. The table's own columns are named through `r`, since an alias of the
    # SELECT list would shadow them.
    return ("(SELECT ws, inference_id, field_name, argMax(r.field_value, r.updated_at) AS field_value,"
            " if(argMax(r.field_number IS NULL, r.updated_at), NULL, argMax(ifNull(r.field_number, 0), r.updated_at))"
            f" AS field_number FROM metadata AS r WHERE ws = {p.add(ws, 'Int32')}"
            f" AND (ts = {NO_TIME} OR {' AND '.join(window)}) GROUP BY ws, inference_id, field_name)")


def group_join(ws: int, filters: Filters, group_by: str | None, p: Params) -> tuple[str, str]:
    """The expression naming an inference `i`'s group (model_id, device_id or meta.<field>;
    NULL for an inference without the field, and for every one without a grouping), and the
    join it needs."""
    if group_by is None:
        return "NULL", ""
    if group_by in ("model_id", "device_id"):
        return f"i.{group_by}", ""
    field = group_by.removeprefix("meta.")
    values = field_rows(ws, field, p, "inference_id, field_value", metadata_rows(ws, filters, p))
    return "m.field_value", f" LEFT JOIN ({values}) m ON m.inference_id = i.inference_id"


def where(ws: int, f: Filters, p: Params, alias: str = "") -> str:
    """A WHERE clause (without the keyword) selecting the workspace's inferences that match."""
    a = f"{alias}." if alias else ""
    terms = inference_terms(ws, f, p, alias, "inference_id", metadata_rows(ws, f, p) if f.meta else "")
    if f.tags:
        terms.append(f"hasAny({a}tags, {p.add(list(f.tags), 'Array(String)')})")
    if f.on_predictions:
        terms.append(f"arrayExists((c, v) -> {prediction_terms(f, p, 'c', 'v')},"
                     f" {a}predictions.class, {a}predictions.confidence)")
    return " AND ".join(terms)


# The predictions' classes and confidences unnested, one row per prediction, as `p_class` and
# `p_confidence` (after `FROM inferences i`). The two arrays are read alone: unnested whole, a
# prediction brings its geometry, points and keypoints too, which made a month's class figures
# three times slower (docs/performance.md).
PREDICTIONS = " ARRAY JOIN i.predictions.class AS p_class, i.predictions.confidence AS p_confidence"


def prediction_terms(f: Filters, p: Params, cls: str = "p_class", confidence: str = "p_confidence") -> str:
    """The class and confidence terms, on one prediction's class and confidence."""
    terms = []
    if f.classes:
        terms.append(f"{cls} IN {p.add(list(f.classes), 'Array(String)')}")
    if f.min_confidence is not None:
        terms.append(f"{confidence} >= {p.add(f.min_confidence, 'Float64')}")
    if f.max_confidence is not None:
        terms.append(f"{confidence} <= {p.add(f.max_confidence, 'Float64')}")
    return " AND ".join(terms)


def bucket(column: str, size: timedelta, p: Params) -> str:
    """The start of `column`'s bucket of `size`, counted from the epoch as DuckDB's time_bucket
    does for sizes that divide a day (its origin, 2000-01-03, is a whole number of days after it);
    positiveModulo floors times before 1970 too."""
    us = p.add(size // timedelta(microseconds=1), "Int64")
    return (f"fromUnixTimestamp64Micro(toUnixTimestamp64Micro({column})"
            f" - positiveModulo(toUnixTimestamp64Micro({column}), {us}), 'UTC')")


def quantile(column: str, q: float, name: str, *, sorted_already: bool = False) -> str:
    """DuckDB's quantile_cont, bit for bit: sort, then lo + (hi - lo) * (h - floor(h)) at
    h = (n - 1) * q. ClickHouse's quantileExactInclusive interpolates as (1 - d) * lo + d * hi,
    which differs in the last bits. NULLs are left out and no values give NULL, as in DuckDB.
    `name` aliases the sorted values and must be unique in the statement; a second quantile of
    the same column passes the same name with `sorted_already`, reusing the one sort."""
    h = f"((length({name}) - 1) * {q!r})"
    lo = f"{name}[toUInt64(floor({h})) + 1]"
    hi = f"{name}[toUInt64(ceil({h})) + 1]"
    values = name if sorted_already else f"(arraySort(groupArray({column})) AS {name})"
    return f"if(empty({values}), NULL, {lo} + ({hi} - {lo}) * ({h} - floor({h})))"
