"""Vision Events on DuckDB (migrations 12, 14 and 15): use cases and events, the twin of
`store/clickhouse/events.py`. An event's custom metadata and event data are metadata of its id,
as every other read finds them, and also maps on the event's own row, which the query filters
while it reads the newest events first (`EventStore._descend`)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from inferwatch.ingest.vision_events import SOURCE, on_event_row
from inferwatch.query.filters import MetaTerm
from inferwatch.store.duckdb.cache import Caches
from inferwatch.store.duckdb.gil import short_gil_waits
from inferwatch.store.duckdb.schema import INSERT_NEW_INFERENCES, INSERT_NEW_METADATA, NOTE_METADATA_CHANGED
from inferwatch.store.duckdb.sql import Params, transaction, where
from inferwatch.store.event_sql import event_where
from inferwatch.store.events import (
    RELATED_FIELD,
    EventQuery,
    EventRecord,
    EventRows,
    EventTables,
    UseCaseFigures,
    UseCaseRecord,
)
from inferwatch.store.rows import EPOCH
from inferwatch.store.terms import field_terms


class UseCaseCache:
    """Each workspace's use cases as last read: every Vision Events write checks its events' use
    case, and a statement costs DuckDB a quarter of a millisecond or more however small its table.
    One process holds the file and `put_use_case` is the table's only writer, so a write clears
    the cache; a read that began before a write keeps nothing (the generation it saw is gone)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cases: dict[int, tuple[UseCaseRecord, ...]] = {}
        self.generation = 0

    def get(self, ws: int) -> tuple[UseCaseRecord, ...] | None:
        return self._cases.get(ws)

    def keep(self, ws: int, generation: int, cases: list[UseCaseRecord]) -> None:
        with self._lock:
            if generation == self.generation:
                self._cases[ws] = tuple(cases)

    def changed(self) -> None:
        with self._lock:
            self.generation += 1
            self._cases.clear()


class EventStore:
    """Needs the host's `_cursor()`, `_write_lock`, `_caches` and `_use_cases`."""

    _write_lock: threading.Lock
    _caches: Caches
    _use_cases: UseCaseCache

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        raise NotImplementedError

    def use_cases(self, ws: int) -> list[UseCaseRecord]:
        cached = self._use_cases.get(ws)
        if cached is not None:
            return list(cached)
        seen = self._use_cases.generation
        rows = self._cursor().execute(
            "SELECT ws, id, name, status, created_at, updated_at FROM use_cases WHERE ws = ?"
            " ORDER BY created_at, id", [ws]).fetchall()
        cases = [UseCaseRecord(*row) for row in rows]
        self._use_cases.keep(ws, seen, cases)
        return cases

    def put_use_case(self, record: UseCaseRecord) -> None:
        with self._write_lock:
            try:
                self._cursor().execute(
                    "INSERT OR REPLACE INTO use_cases VALUES (?, ?, ?, ?, ?, ?)",
                    [record.ws, record.id, record.name, record.status, record.created_at, record.updated_at])
            finally:
                self._use_cases.changed()

    def use_case_figures(self, ws: int) -> dict[str, UseCaseFigures]:
        rows = self._cursor().execute(
            "SELECT use_case_id, count(*), max(ts), list(DISTINCT event_type ORDER BY event_type) FROM events"
            " WHERE ws = ? GROUP BY use_case_id", [ws]).fetchall()
        return {str(uc): UseCaseFigures(int(n), last, tuple(types)) for uc, n, last, types in rows}

    def put_events(self, rows: EventRows) -> None:
        if not len(rows):
            return
        event_batch = rows.to_arrow()  # read by name in the SQL below
        con = self._cursor()
        # A DELETE of the ids and a plain INSERT: INSERT OR REPLACE took 2 to 7 times as long.
        with self._write_lock, transaction(con):
            con.execute("DELETE FROM events USING event_batch AS b WHERE events.ws = b.ws"
                        " AND events.event_id = b.event_id")
            con.execute("INSERT INTO events BY NAME SELECT * FROM event_batch")
        del event_batch

    def add_new_events(self, tables: EventTables) -> int | None:
        # Plain INSERTs, in one transaction: each checks its keys through its table's primary-key
        # index, where finding the ids first (`event_bodies`) and deleting them (`put_events`) read
        # the whole events table, and upserting metadata replaces row by row. A key already
        # stored fails its INSERT, and the transaction is rolled back whole. The transaction is
        # one script, one call: under load each call's return waits for the interpreter lock the
        # event loop holds, and the writer, which every request waits on, paid that wait six times.
        # The lock is still taken back some sixty times inside the call; `short_gil_waits`
        # keeps each of those waits short.
        if not tables.events.num_rows:
            return None
        event_batch, batch, meta_batch = tables.events, tables.inferences, tables.metadata  # read by name
        script = ["BEGIN", "INSERT INTO events BY NAME SELECT * FROM event_batch"]
        if batch is not None:
            script.append(INSERT_NEW_INFERENCES)
        if meta_batch is not None:
            script += [INSERT_NEW_METADATA, NOTE_METADATA_CHANGED]
        con = self._cursor()
        with self._write_lock:
            try:
                with short_gil_waits():
                    con.execute(";\n".join([*script, "COMMIT"]))
            except BaseException as exc:
                # Whichever statement failed, the transaction BEGIN opened ends here, and the
                # error the caller sees is that statement's, not the roll-back's.
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                if isinstance(exc, duckdb.ConstraintException):
                    return None
                raise
            if batch is not None:
                self._caches.touched(batch)
        del event_batch, meta_batch
        return tables.n_inferences

    def event_bodies(self, ws: int, event_ids: Sequence[str]) -> dict[str, str]:
        if not event_ids:
            return {}
        p = Params()
        rows = self._cursor().execute(
            f"SELECT event_id, body FROM events WHERE ws = {p.add(ws)} AND event_id IN ({p.each(event_ids)})",
            p).fetchall()
        return {str(i): str(b) for i, b in rows}

    def forget_event_rows(self, ws: int, event_ids: Sequence[str], fields: Sequence[tuple[str, str]]) -> None:
        if not event_ids:
            return
        con = self._cursor()
        with self._write_lock:
            with transaction(con):
                p = Params()
                gone = con.execute(
                    f"DELETE FROM inferences WHERE ws = {p.add(ws)} AND source = {p.add(SOURCE)}"
                    f" AND inference_id IN ({p.each(event_ids)}) RETURNING ws, ts", p).fetchall()
                if fields:
                    con.execute(
                        "DELETE FROM metadata AS m USING (SELECT unnest(?::VARCHAR[]) AS i, unnest(?::VARCHAR[]) AS f)"
                        " AS d WHERE m.ws = ? AND m.inference_id = d.i AND m.field_name = d.f",
                        [[i for i, _ in fields], [f for _, f in fields], ws])
                # The ids' metadata copies beside their inferences' figures are out of date.
                con.execute("INSERT INTO metadata_changed SELECT ?, md5_number(unnest(?::VARCHAR[]))",
                            [ws, list(event_ids)])
            if gone:  # the per-hour caches of the hours they were in are re-summed on the next read
                self._caches.touched(pa.table({"ws": pa.array([r[0] for r in gone], pa.int32()),
                                               "ts": pa.array([r[1] for r in gone], pa.timestamp("us"))}))

    # The time windows the query reads in turn, newest first, each this far below the newest
    # event it may answer (`_descend`); after the last, everything older. A class attribute so a
    # test can make them small enough that a page spans several.
    descent: tuple[timedelta, ...] = tuple(timedelta(hours=8 ** k) for k in range(4))  # 1 h .. 21 days

    def query_events(self, ws: int, query: EventQuery) -> list[EventRecord]:
        con = self._cursor()
        if not all(on_event_row(m.field) for m in query.meta):
            # A term on a `ve.*` field is a semi-join over the metadata rows, which a window of
            # time does not narrow and which may match millions of ids: one statement builds its
            # hash once. The feedback filter's semi-join matches only reviewed events (few), so
            # it is cheap to build again in each window.
            return self._events_between(con, ws, query, None, None, query.limit)
        with transaction(con):  # one snapshot for every window
            return self._descend(con, ws, query)

    def _descend(self, con: duckdb.DuckDBPyConnection, ws: int, query: EventQuery) -> list[EventRecord]:
        """The page read newest window first, widening while it is not full: DuckDB skips the row
        groups whose time range (zone map) lies outside a window, and events are stored roughly
        in time order, so a filter that matches often reads only the newest row groups; one that
        matches rarely reads them all, as a single statement would. Windows are disjoint and
        descending, so their answers in turn are the page."""
        tops = [t for t in (query.end, _after_ts(query)) if t is not None]
        # Only where the windows start: an anchor below the newest event still answers right,
        # as the first window is open above.
        anchor = min(tops) if tops else con.execute("SELECT max(ts) FROM events").fetchone()[0]  # type: ignore[index]
        if anchor is None:
            return []
        found: list[EventRecord] = []
        upper = None
        for width in (*self.descent, None):
            lower = None if width is None else anchor - width
            last = lower is None or (query.start is not None and lower <= query.start)
            found += self._events_between(con, ws, query, None if last else lower, upper, query.limit - len(found))
            if last or len(found) >= query.limit:
                return found
            upper = lower
        return found

    def _events_between(self, con: duckdb.DuckDBPyConnection, ws: int, query: EventQuery, lower: datetime | None,
                        upper: datetime | None, limit: int) -> list[EventRecord]:
        """The newest `limit` events of the query with `lower` <= ts < `upper` (None: unbounded)."""
        p = Params()
        terms = event_where(ws, query, p, metadata="metadata", field_terms=_field_terms, inferences=where,
                            lower=lower, upper=upper)
        rows = con.execute(
            f"SELECT event_id, ts, received_at, body, warnings FROM events WHERE {terms}"
            f" ORDER BY ts DESC, event_id DESC LIMIT {p.add(limit)}", p).fetchall()
        return [EventRecord(e, ts, r, b, warnings=tuple(w)) for e, ts, r, b, w in rows]

    def delete_events(self, ws: int, use_case_id: str, event_ids: Sequence[str]) -> list[str]:
        if not event_ids:
            return []
        con = self._cursor()
        with self._write_lock, transaction(con):
            p = Params()
            which = f"ws = {p.add(ws)} AND use_case_id = {p.add(use_case_id)} AND event_id IN ({p.each(event_ids)})"
            found = [str(row[0]) for row in con.execute(f"SELECT event_id FROM events WHERE {which}", p).fetchall()]
            con.execute(f"DELETE FROM events WHERE {which}", p)
        return sorted(found)

    def find_events(self, ws: int, event_ids: Sequence[str]) -> list[EventRecord]:
        if not event_ids:
            return []
        p = Params()
        rows = self._cursor().execute(
            f"SELECT {_FULL} FROM events WHERE ws = {p.add(ws)} AND event_id IN ({p.each(event_ids)})"
            " ORDER BY event_id", p).fetchall()
        return [_record(row) for row in rows]

    def feedback_of(self, ws: int, event_id: str) -> list[EventRecord]:
        p = Params()
        rows = self._cursor().execute(
            f"SELECT {_FULL} FROM events WHERE ws = {p.add(ws)} AND event_type = 'operator_feedback'"
            f" AND event_id IN (SELECT inference_id FROM metadata WHERE ws = {p.add(ws)}"
            f" AND field_name = {p.add(RELATED_FIELD)} AND field_value = {p.add(event_id)})"
            " ORDER BY received_at, ts, event_id", p).fetchall()
        return [_record(row) for row in rows]

    def event_schema(self, ws: int, use_case_id: str, images: bool) -> list[str]:
        column = "image_meta_types" if images else "meta_types"
        rows = self._cursor().execute(
            f"SELECT DISTINCT unnest({column}) FROM events WHERE ws = ? AND use_case_id = ?",
            [ws, use_case_id]).fetchall()
        return sorted(str(row[0]) for row in rows)


_FULL = "event_id, ts, received_at, body, use_case_id, event_type, warnings"


def _record(row: tuple[Any, ...]) -> EventRecord:
    event_id, ts, received, body, use_case, event_type, warnings = row
    return EventRecord(event_id, ts, received, body, use_case, event_type, tuple(warnings))


def _after_ts(query: EventQuery) -> datetime | None:
    """The time of the previous page's last event: this page's events are at it or before."""
    return None if query.after is None else EPOCH + timedelta(microseconds=query.after[0])


def _field_terms(term: MetaTerm, p: Params) -> str:
    """The term on the event's own maps (migration 15): a missing key reads as NULL."""
    name = p.add(term.field)
    text, number = f"field_values[{name}]", f"field_numbers[{name}]"
    return field_terms(term, p, text, number, f"{text} IS NOT NULL", None)
