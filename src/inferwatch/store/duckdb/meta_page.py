"""The newest rows of the inference list with metadata terms, checked through the metadata's
index instead of a semi-join into the whole metadata table.

The plain statement's semi-join reads every metadata row of the term's field whatever the page:
its cost grows with the store (190 ms of 5 million inferences' plan, seconds at a hundred
million), while the page needs the newest few hundred inferences. Here the inferences matching
the other terms are read newest first in batches (each in the widening time windows of
`store/paging.py`), and only their ids are looked up in the metadata, through the index on
`id_key` (migration 13), with each term then checked on the rows found, in the plain statement's
own words (`store/terms.py`). A batch's candidates are a run of the plain order, so the matches
among them, in that order, are the page's next rows: the rows are exactly the plain statement's.

A lookup costs DuckDB about 35 microseconds per id whatever the table's size, so a term that
matches few recent inferences would cost more this way than the one scan: past a budget of
candidates, or once the matches seen say the budget will not do, the caller takes the plain
statement from where the batches stopped.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from datetime import datetime, timedelta
from typing import Any

import duckdb

from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store.base import Cursor
from inferwatch.store.duckdb.sql import Params, where
from inferwatch.store.paging import below, window_starts
from inferwatch.store.rows import EPOCH, LIST_COLUMNS, naive_utc, to_us
from inferwatch.store.terms import field_rows, meta_terms

# Candidates of the first batch; later ones are sized by the matches seen so far.
FIRST_BATCH = 256
# Ids per lookup statement: DuckDB looks up through the index while a statement names at most
# `index_scan_max_count` (2048) metadata rows, and each id may hold several fields.
LOOKUP = 256
# Candidates checked at most before the plain statement is cheaper.
BUDGET = 4096
# The metadata rows from which the lookups are the quicker: the scan's cost grows with them
# (at 8 million, 65-380 ms of CPU), the lookups' does not (100-360 ms); docs/performance.md.
LOOKUP_FROM = 16_000_000

_ORDER = " ORDER BY ts DESC, inference_id DESC, image_index DESC"


def metadata_rows(con: duckdb.DuckDBPyConnection) -> int:
    """The metadata table's rows as DuckDB keeps count of them (no scan; rows an upsert replaced
    count until a checkpoint): which way is quicker needs no more."""
    row = con.execute("SELECT estimated_size FROM duckdb_tables() WHERE schema_name = 'main'"
                      " AND table_name = 'metadata'").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


@dataclasses.dataclass
class Checked:
    """What the batches found: `rows` in the list's order; `complete` when they are all the rows
    wanted or all there are; else the plain statement goes on below `position`."""

    rows: list[tuple[Any, ...]]
    complete: bool
    position: Cursor | None


def newest_checked(con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, after: Cursor | None,
                   want: int, top: datetime | None, first: int = FIRST_BATCH, budget: int = BUDGET,
                   lookup: int = LOOKUP) -> Checked:
    """Up to `want` rows of the list below `after` (its first page when None), `top` the newest
    time to start from (`paging.top_of`); `first`, `budget` and `lookup` as the constants above
    say (tests make them small)."""
    plain = dataclasses.replace(filters, meta=())
    floor = naive_utc(filters.start) if filters.start is not None else None
    windows = window_starts(top, floor)
    lowest = next(windows)
    found: list[tuple[Any, ...]] = []
    position, checked, size = after, 0, first
    while True:
        candidates = _candidates(con, ws, plain, position, lowest, size)
        checked += len(candidates)
        found += _matching(con, ws, filters.meta, candidates, lookup)
        if len(found) >= want:
            return Checked(_rows(con, ws, plain, after, found[:want]), True, None)
        if candidates:
            last = candidates[-1]
            position = Cursor(to_us(last[2]), last[0], last[1])
        if len(candidates) < size:  # the window holds no more: widen it
            if lowest is None:
                return Checked(_rows(con, ws, plain, after, found), True, None)
            lowest = next(windows)
        needed = _needed(want - len(found), len(found), checked, first, budget)
        if checked >= first and checked + needed > budget:
            return Checked(_rows(con, ws, plain, after, found), False, position)
        size = max(first, needed)


def _needed(missing: int, matched: int, checked: int, first: int, budget: int) -> int:
    """The candidates likely to hold the missing rows, at the rate matched so far (with a
    quarter more); past the budget when nothing matched in a first batch's worth."""
    if matched == 0:
        return budget + 1 if checked >= first else first
    return math.ceil(missing * checked / matched * 1.25)


def _below(ws: int, plain: Filters, position: Cursor | None, p: Params) -> str:
    """The terms other than metadata ones, on the rows below `position` (all when None)."""
    clause = where(ws, plain, p)
    if position is not None:
        clause += " AND " + below(p.add(EPOCH + timedelta(microseconds=position.ts_us)), p.add(position.inference_id),
                                  p.add(position.image_index))
    return clause


def _candidates(con: duckdb.DuckDBPyConnection, ws: int, plain: Filters, position: Cursor | None,
                lowest: datetime | None, size: int) -> list[tuple[Any, ...]]:
    """The newest `size` rows matching the terms other than metadata ones, below `position` and
    at or after `lowest`: (inference_id, image_index, ts). Only these: most candidates fail a
    term, and their predictions would cost more to read than their check."""
    p = Params()
    clause = _below(ws, plain, position, p) + ("" if lowest is None else f" AND ts >= {p.add(lowest)}")
    return con.execute(f"SELECT inference_id, image_index, ts FROM inferences WHERE {clause}{_ORDER}"
                       f" LIMIT {p.add(size)}", p).fetchall()


def _rows(con: duckdb.DuckDBPyConnection, ws: int, plain: Filters, after: Cursor | None,
          found: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The rows `found` (in the list's order), in `LIST_COLUMNS`: those of their ids below `after`
    from the oldest found on. Any other row of those ids there that the other terms select
    shares their metadata, so it was found too, or lies past the last candidate and so after
    every found row, where the LIMIT leaves it."""
    if not found:
        return []
    p = Params()
    ids = p.add(sorted({row[0] for row in found}))
    clause = (f"{_below(ws, plain, after, p)} AND ts >= {p.add(found[-1][2])}"
              f" AND inference_id IN (SELECT unnest({ids}::VARCHAR[]))")
    return con.execute(f"SELECT {LIST_COLUMNS} FROM inferences WHERE {clause}{_ORDER} LIMIT {p.add(len(found))}",
                       p).fetchall()


def _matching(con: duckdb.DuckDBPyConnection, ws: int, terms: tuple[MetaTerm, ...],
              candidates: list[tuple[Any, ...]], lookup: int) -> list[tuple[Any, ...]]:
    """The candidates (in their order) whose metadata meets every term."""
    ids = list(dict.fromkeys(row[0] for row in candidates))
    passed: set[str] = set()
    for start in range(0, len(ids), lookup):
        passed.update(found for (found,) in _lookup(con, ws, terms, ids[start:start + lookup]))
    return [row for row in candidates if row[0] in passed]


def id_key(inference_id: str) -> int:
    """DuckDB's `md5_number(inference_id)`, the metadata's `id_key`, reckoned here: a UHUGEINT
    crosses between DuckDB and Python at about 80 microseconds a value, md5 in one."""
    return int.from_bytes(hashlib.md5(inference_id.encode()).digest(), "little")


def _lookup(con: duckdb.DuckDBPyConnection, ws: int, terms: tuple[MetaTerm, ...],
            ids: list[str]) -> list[tuple[str]]:
    """The ids among `ids` whose metadata meets every term. The metadata rows are named by their
    `id_key` alone, bound one by one (an IN list of constants is what DuckDB looks up through the
    index; another term beside it, or keys from a subquery or a list, and it scans the table)
    and kept apart (MATERIALIZED) so that the terms are not pushed down into that lookup. The
    ids are the candidates' (`id_key` is their md5), answered by the rows' own."""
    p = Params()
    wanted = ", ".join(f"{p.add(str(id_key(i)))}::UHUGEINT" for i in ids)
    checks = " INTERSECT ".join(f"{field_rows(ws, t.field, p, 'inference_id', 'm')}{meta_terms(t, p)}"
                                for t in terms)
    return con.execute(
        "WITH m AS MATERIALIZED (SELECT ws, inference_id, field_name, field_value, field_number FROM metadata"
        f" WHERE id_key IN ({wanted})) {checks}", p).fetchall()
