"""Vision Events on ClickHouse (migrations 9 to 11): the twin of `store/duckdb/events.py`, term for
term, but one statement: the custom-metadata and event-data terms read the maps on the event's
row, as DuckDB's do, and the newest page is what `ORDER BY ts DESC ... LIMIT` keeps.

ClickHouse has no unique keys: a use case or an event written again is a newer row of a
`ReplacingMergeTree` (its `version`), and every read says `FINAL`, so answers are right before
merges happen. A delete is such a row marked `deleted`, which reads leave out.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from inferwatch.ingest.vision_events import SOURCE
from inferwatch.query.filters import MetaTerm
from inferwatch.store.clickhouse.sql import Params, where
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
from inferwatch.store.rows import naive_utc
from inferwatch.store.terms import field_terms

_LIVE = "events FINAL WHERE deleted = 0 AND"


class EventStore:
    """Needs the host's `_rows()`, `_command()` and `_insert()`."""

    _version_lock = threading.Lock()
    _last_version = 0

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _command(self, sql: str, params: dict[str, Any]) -> None:
        raise NotImplementedError

    def _insert(self, table: str, data: pa.Table) -> None:
        raise NotImplementedError

    @classmethod
    def _version(cls) -> int:
        """A number larger than every one handed out before in this process: two writes of one
        key within a clock tick still replace in order."""
        with cls._version_lock:
            cls._last_version = max(cls._last_version + 1, time.time_ns())
            return cls._last_version

    def use_cases(self, ws: int) -> list[UseCaseRecord]:
        p = Params()
        rows = self._rows(
            "SELECT ws, id, name, status, created_at, updated_at FROM use_cases FINAL"
            f" WHERE ws = {p.add(ws, 'Int32')} ORDER BY created_at, id", p)
        return [UseCaseRecord(int(w), str(i), str(n), str(s), naive_utc(c), naive_utc(u))
                for w, i, n, s, c, u in rows]

    def put_use_case(self, record: UseCaseRecord) -> None:
        self._insert("use_cases", pa.table({
            "ws": pa.array([record.ws], pa.int32()), "id": [record.id], "name": [record.name],
            "status": [record.status], "created_at": pa.array([record.created_at], pa.timestamp("us")),
            "updated_at": pa.array([record.updated_at], pa.timestamp("us")),
            "version": pa.array([self._version()], pa.uint64())}))

    def use_case_figures(self, ws: int) -> dict[str, UseCaseFigures]:
        p = Params()
        rows = self._rows(
            f"SELECT use_case_id, count(), max(ts), arraySort(groupUniqArray(event_type)) FROM {_LIVE}"
            f" ws = {p.add(ws, 'Int32')} GROUP BY use_case_id", p)
        return {str(uc): UseCaseFigures(int(n), naive_utc(last), tuple(str(t) for t in types))
                for uc, n, last, types in rows}

    def put_events(self, rows: EventRows) -> None:
        if not len(rows):
            return
        batch = rows.to_arrow()
        n = batch.num_rows
        batch = batch.append_column("deleted", pa.array([0] * n, pa.uint8()))
        self._insert("events", batch.append_column("version", pa.array([self._version()] * n, pa.uint64())))

    def add_new_events(self, tables: EventTables) -> int | None:
        # No transaction to try the plain inserts in: the caller's general path checks first.
        return None

    def event_bodies(self, ws: int, event_ids: Sequence[str]) -> dict[str, str]:
        if not event_ids:
            return {}
        p = Params()
        rows = self._rows(f"SELECT event_id, body FROM {_LIVE} ws = {p.add(ws, 'Int32')}"
                          f" AND event_id IN {p.add(list(event_ids), 'Array(String)')}", p)
        return {str(i): str(b) for i, b in rows}

    def forget_event_rows(self, ws: int, event_ids: Sequence[str], fields: Sequence[tuple[str, str]]) -> None:
        if not event_ids:
            return
        p = Params()
        w = p.add(ws, "Int32")
        selected = (f"ws = {w} AND source = {p.add(SOURCE, 'String')}"
                    f" AND inference_id IN {p.add(list(event_ids), 'Array(String)')}")
        # As a retention sweep deletes: metadata, the identities, then the rows by a mutation (a
        # lightweight DELETE fails on the table's MATERIALIZED columns).
        if fields:
            self._command(f"DELETE FROM metadata WHERE ws = {w} AND (inference_id, field_name) IN"
                          f" {p.add([tuple(f) for f in fields], 'Array(Tuple(String, String))')}", p)
        self._command(f"DELETE FROM identity_keys WHERE ws = {w} AND (inference_id, image_index) IN"
                      f" (SELECT inference_id, image_index FROM inferences WHERE {selected})", p)
        self._command(f"ALTER TABLE inferences DELETE WHERE {selected} SETTINGS mutations_sync = 1", p)

    def query_events(self, ws: int, query: EventQuery) -> list[EventRecord]:
        p = Params()
        terms = event_where(ws, query, p, metadata="metadata FINAL", field_terms=_field_terms, inferences=where)
        rows = self._rows(
            f"SELECT event_id, ts, received_at, body, warnings FROM {_LIVE} {terms}"
            f" ORDER BY ts DESC, event_id DESC LIMIT {p.add(query.limit, 'UInt32')}", p)
        return [EventRecord(str(e), naive_utc(ts), naive_utc(r), str(b), warnings=tuple(str(x) for x in w))
                for e, ts, r, b, w in rows]

    def delete_events(self, ws: int, use_case_id: str, event_ids: Sequence[str]) -> list[str]:
        if not event_ids:
            return []
        p = Params()
        which = (f"ws = {p.add(ws, 'Int32')} AND use_case_id = {p.add(use_case_id, 'String')}"
                 f" AND event_id IN {p.add(list(event_ids), 'Array(String)')}")
        found = sorted(str(row[0]) for row in self._rows(f"SELECT event_id FROM {_LIVE} {which}", p))
        if found:
            # The rows read in a subquery: an alias in the SELECT (`1 AS deleted`) would be what
            # the WHERE's `deleted` names.
            self._command(
                f"INSERT INTO events SELECT * REPLACE (1 AS deleted, {p.add(self._version(), 'UInt64')} AS version)"
                f" FROM (SELECT * FROM {_LIVE} {which})", p)
        return found

    def find_events(self, ws: int, event_ids: Sequence[str]) -> list[EventRecord]:
        if not event_ids:
            return []
        p = Params()
        rows = self._rows(
            f"SELECT {_FULL} FROM {_LIVE} ws = {p.add(ws, 'Int32')}"
            f" AND event_id IN {p.add(list(event_ids), 'Array(String)')} ORDER BY event_id", p)
        return [_record(row) for row in rows]

    def feedback_of(self, ws: int, event_id: str) -> list[EventRecord]:
        p = Params()
        rows = self._rows(
            f"SELECT {_FULL} FROM {_LIVE} ws = {p.add(ws, 'Int32')} AND event_type = 'operator_feedback'"
            f" AND event_id IN (SELECT inference_id FROM metadata FINAL WHERE ws = {p.add(ws, 'Int32')}"
            f" AND field_name = {p.add(RELATED_FIELD, 'String')} AND field_value = {p.add(event_id, 'String')})"
            " ORDER BY received_at, ts, event_id", p)
        return [_record(row) for row in rows]

    def event_schema(self, ws: int, use_case_id: str, images: bool) -> list[str]:
        column = "image_meta_types" if images else "meta_types"
        p = Params()
        rows = self._rows(
            f"SELECT DISTINCT arrayJoin({column}) FROM {_LIVE} ws = {p.add(ws, 'Int32')}"
            f" AND use_case_id = {p.add(use_case_id, 'String')}", p)
        return sorted(str(row[0]) for row in rows)


_FULL = "event_id, ts, received_at, body, use_case_id, event_type, warnings"


def _record(row: tuple[Any, ...]) -> EventRecord:
    event_id, ts, received, body, use_case, event_type, warnings = row
    return EventRecord(str(event_id), naive_utc(ts), naive_utc(received), str(body), str(use_case), str(event_type),
                       tuple(str(w) for w in warnings))


def _field_terms(term: MetaTerm, p: Params) -> str:
    """The term on the event's own maps (migration 11): a Map answers a missing key with the
    type's default ('', 0), so each value is read only where its key is."""
    name = p.add(term.field, "String")
    return field_terms(term, p, f"field_values[{name}]", f"field_numbers[{name}]",
                       f"mapContains(field_values, {name})", f"mapContains(field_numbers, {name})")
