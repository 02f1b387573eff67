"""Copies an embedded DuckDB store into a ClickHouse store (`inferwatch migrate`).

Inferences are read from DuckDB in one ordered scan, (ts, ws, inference_id, image_index), and
inserted in chunks; after each chunk the target records the last row copied (`import_progress`).
A copy cut short (Ctrl-C, a lost connection, a full disk) starts again after that row. The
chunk in flight when it stopped may be partly stored: it is read again, and the target's insert
skips identities it holds, so nothing is copied twice. Only that first chunk of a run is
checked (DuckDB's key makes each source row unique, and rows past it were never sent), unless the
target held inferences before this copy began: a lookup per chunk would cost a read of the
target's whole identity table each time, turning the copy quadratic. Metadata, device facts and images are
smaller and idempotent in their tables (ReplacingMergeTree, aggregate states of min/max/argMax),
so they are copied whole after the inferences, again on every run until the copy is complete;
so are the workspaces' settings: ground truth per model, alert rules and their states, and
retention policies. Alert history is appended, not replaced, so only the events the target does
not hold yet are copied. Workspaces keep their ids, which every row refers to.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from inferwatch.ingest.metavalues import NUMBER_PATTERN
from inferwatch.store.base import ApiKeyRecord, AuditRecord, StoreLocked, WorkspaceRecord
from inferwatch.store.clickhouse import ClickHouseStore, schema
from inferwatch.store.clickhouse.sql import Params
from inferwatch.store.rows import EPOCH, naive_utc, now_utc, to_us

DEFAULT_CHUNK_ROWS = 50_000
_STEP = "inferences"
_DONE = "done"

_INFERENCES = f"SELECT {', '.join(schema.INFERENCE_COLUMNS)} FROM inferences"
_ORDER = " ORDER BY ts, ws, inference_id, image_index"
# After a recorded row, in the order above; `ts >= ?` first lets DuckDB skip row groups by time.
_AFTER = (" WHERE ts >= ? AND (ts > ? OR (ws > ? OR (ws = ? AND (inference_id > ?"
          " OR (inference_id = ? AND image_index > ?)))))")
# Everything else, shaped as the target's tables take it, with the figure of `Copied` it counts in.
_TABLES = {
    "metadata": ("metadata", "SELECT ws, inference_id, field_name, field_value, updated_at, field_type,"
                 " field_number FROM metadata"),
    "device_reports": ("devices", "SELECT ws, device_id, first_seen, last_seen, server_id, server_version,"
                       " hostname, platform, tags, 1::UTINYINT AS tags_reported FROM devices"),
    "images": ("images", "SELECT ws, sha256, inference_id, content_type, width, height, size_bytes, name, project,"
               " batch, tags, uploaded_at, epoch_us(uploaded_at)::UBIGINT AS version FROM images"),
}
# A source from before typed metadata (DuckDB migration 11), as that migration reads it: every
# value a string, with the number its text reads as.
_UNTYPED_METADATA = (
    "SELECT ws, inference_id, field_name, field_value, updated_at, 'string' AS field_type,"
    f" CASE WHEN regexp_full_match(field_value, '{NUMBER_PATTERN}') AND isfinite(TRY_CAST(field_value AS DOUBLE))"
    " THEN TRY_CAST(field_value AS DOUBLE) END AS field_number FROM metadata")
_SETTINGS = {
    "model_settings": "SELECT ws, model_id, ground_truth, updated_at FROM model_settings",
    "alert_rules": "SELECT ws, rule_id, spec, 0::UTINYINT AS deleted, created_at, updated_at FROM alert_rules",
    "alert_state": "SELECT ws, rule_id, state, since, value, evaluated_at FROM alert_state",
    "retention": "SELECT ws, max_days, max_inferences, image_max_days, updated_at FROM retention",
}
# Vision Events (DuckDB migration 12): replacing tables on the target, so copying them again is the
# same rows; each row's version is its own time, below any the target's later writes hand out.
_VISION_EVENTS = {
    "use_cases": "SELECT ws, id, name, status, created_at, updated_at,"
                 " epoch_us(updated_at)::UBIGINT * 1000 AS version FROM use_cases",
    "events": "SELECT ws, event_id, use_case_id, event_type, ts, received_at, device_id, stream_id, workflow_id,"
              " external_id, n_images, meta_types, image_meta_types, body, 0::UTINYINT AS deleted,"
              " epoch_us(received_at)::UBIGINT * 1000 AS version, warnings,"
              " coalesce(field_values, MAP {}::MAP(VARCHAR, VARCHAR)) AS field_values,"
              " coalesce(field_numbers, MAP {}::MAP(VARCHAR, DOUBLE)) AS field_numbers FROM events",
}
# A source from before migration 14 holds no ingestion warnings.
_EVENTS_WITHOUT_WARNINGS = ", warnings,"
# A source from before DuckDB's migration 15 (read-only, so not migrated): each event's fields
# from the metadata rows it wrote, as that migration fills them.
_EVENTS_BEFORE_FIELDS = """ FROM events LEFT JOIN (
    SELECT ws AS m_ws, inference_id,
        map_from_entries(list((field_name, field_value))) AS field_values,
        map_from_entries(list((field_name, field_number)) FILTER (WHERE field_number IS NOT NULL)) AS field_numbers
    FROM metadata WHERE NOT contains(field_name, '.') OR starts_with(field_name, 've.data.')
    GROUP BY ws, inference_id
) AS m ON events.ws = m.m_ws AND events.event_id = m.inference_id"""
_EVENTS = ("SELECT ws, rule_id, fired_at, state, previous, value, notified::UTINYINT AS notified, detail"
           " FROM alert_events ORDER BY ws, rule_id, fired_at")


@dataclass(frozen=True, slots=True)
class ImportPosition:
    """The last row a migration copied, in the source's (ts, ws, inference_id, image_index) order,
    and how many rows it had copied by then."""

    ts_us: int
    ws: int
    inference_id: str
    image_index: int
    copied: int


class ImportTarget:
    """A ClickHouse store as a copy writes it: rows as the source holds them (workspaces under
    their own ids, whole tables), and bookmarks of how far the copy got. Only `inferwatch migrate`
    writes this way, so these live here rather than on the store."""

    def __init__(self, store: ClickHouseStore) -> None:
        self.store = store

    def put_workspace(self, record: WorkspaceRecord) -> None:
        """Stores a workspace under its own id (every row refers to it)."""
        with self.store._write_lock:
            self.store._client().insert(
                "workspaces", [[record.id, record.slug, record.key_hash, record.created_at, now_utc()]],
                column_names=["id", "slug", "key_hash", "created_at", "updated_at"])

    def has_inferences(self) -> bool:
        return bool(self.store._rows("SELECT 1 FROM identity_keys LIMIT 1", {}))

    def append_inferences(self, batch: pa.Table, *, check: bool = True) -> int:
        """Inserts an Arrow table shaped as `InferenceRows.to_arrow()`, skipping the identities
        already stored; returns how many rows were new. `check=False` inserts all: for rows known
        not to be stored (and unique)."""
        with self.store._write_lock:
            if not check:
                self.store._insert("inferences", batch)
                return batch.num_rows
            return self.store._append_inferences(batch)[0]

    def time_metadata(self) -> None:
        """Gives the copied metadata rows their inference's time (copied without one), then merges
        the table so the untimed rows are gone (`schema.METADATA_TIMES`)."""
        with self.store._write_lock:
            self.store._command(schema.METADATA_TIMES, {})
            self.store._command("OPTIMIZE TABLE metadata FINAL", {})

    def insert_table(self, table: str, data: pa.Table) -> None:
        """Appends Arrow rows to one of the tables as they are."""
        with self.store._write_lock:
            self.store._insert(table, data)

    def position(self, source: str, step: str) -> ImportPosition | None:
        """Where copying `source` stopped in `step`, if it started."""
        p = Params()
        rows = self.store._rows(
            "SELECT ts, ws, inference_id, image_index, copied FROM import_progress FINAL"
            f" WHERE source = {p.add(source, 'String')} AND step = {p.add(step, 'String')}", p)
        if not rows:
            return None
        ts, ws, inference_id, image_index, copied = rows[0]
        return ImportPosition(to_us(ts), ws, inference_id, image_index, int(copied))

    def record(self, source: str, step: str, ts_us: int, ws: int, inference_id: str, image_index: int,
               copied: int) -> None:
        with self.store._write_lock:
            self.store._client().insert(
                "import_progress",
                [[source, step, EPOCH + timedelta(microseconds=ts_us), ws, inference_id, image_index, copied,
                  now_utc()]],
                column_names=["source", "step", "ts", "ws", "inference_id", "image_index", "copied", "updated_at"])

    def alert_event_keys(self) -> set[tuple[int, str, datetime, str]]:
        """Every event's (ws, rule, time, state): what the copy must not repeat."""
        rows = self.store._rows("SELECT ws, rule_id, fired_at, state FROM alert_events", {})
        return {(ws, rule, naive_utc(at), state) for ws, rule, at, state in rows}


@dataclass(slots=True)
class Copied:
    workspaces: int = 0
    inferences: int = 0
    new_inferences: int = 0
    metadata: int = 0
    devices: int = 0
    images: int = 0
    settings: int = 0
    alert_events: int = 0
    vision_events: int = 0  # use cases and events
    resumed_at: int = 0


def open_source(path: str) -> duckdb.DuckDBPyConnection:
    """The DuckDB file, read-only; a running server holds it locked (stop it first)."""
    if not Path(path).exists():
        raise FileNotFoundError(path)
    try:
        return duckdb.connect(path, read_only=True)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreLocked(str(exc)) from None
        raise


def _batches(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any], size: int) -> pa.RecordBatchReader:
    """The rows of a query streamed as Arrow batches of `size` (never all in memory)."""
    # A cursor of its own: a reader left unfinished (a stopped copy) must not block the next query.
    reader = con.cursor().sql(sql, params=params or None).to_arrow_reader(size)
    assert reader is not None
    return reader


def copy_store(source: duckdb.DuckDBPyConnection, source_name: str, store: ClickHouseStore,
               chunk_rows: int = DEFAULT_CHUNK_ROWS,
               progress: Callable[[int, int], None] = lambda done, total: None) -> Copied:
    """Copies everything; `progress(copied, total)` after each chunk of inferences."""
    out = Copied()
    store.migrate()
    target = ImportTarget(store)
    for ws_id, slug, key_hash, created_at in source.cursor().execute(
            "SELECT id, slug, key_hash, created_at FROM workspaces ORDER BY id").fetchall():
        target.put_workspace(WorkspaceRecord(ws_id, slug, key_hash, created_at))
        out.workspaces += 1

    (total,) = source.cursor().execute("SELECT count(*) FROM inferences").fetchone() or (0,)
    position = target.position(source_name, _STEP)
    sql, params = _INFERENCES + _ORDER, []
    copied = 0
    if position is not None:
        ts = EPOCH + timedelta(microseconds=position.ts_us)
        sql = _INFERENCES + _AFTER + _ORDER
        params = [ts, ts, position.ws, position.ws, position.inference_id, position.inference_id,
                  position.image_index]
        copied = out.resumed_at = position.copied
    progress(copied, total)
    # Every chunk is checked against what is stored only if the target had rows of its own.
    check_all = position is None and target.has_inferences()
    first = True
    for batch in _batches(source, sql, params, chunk_rows):
        if batch.num_rows == 0:
            continue
        table = pa.Table.from_batches([batch])
        out.new_inferences += target.append_inferences(table, check=first or check_all)
        first = False
        copied += batch.num_rows
        out.inferences += batch.num_rows
        last = batch.num_rows - 1
        ts_us = batch.column("ts")[last].value
        target.record(source_name, _STEP, ts_us, batch.column("ws")[last].as_py(),
                             batch.column("inference_id")[last].as_py(),
                             batch.column("image_index")[last].as_py(), copied)
        progress(copied, total)

    for table_name, (counted, query) in _TABLES.items():
        if table_name == "metadata" and not _has(source, "metadata", "field_type"):
            query = _UNTYPED_METADATA
        count = 0
        for batch in _batches(source, query, [], chunk_rows):
            if batch.num_rows:
                target.insert_table(table_name, pa.Table.from_batches([batch]))
                count += batch.num_rows
        setattr(out, counted, count)
    target.time_metadata()
    for table_name, query in _SETTINGS.items():
        rows = _batches(source, query, [], DEFAULT_CHUNK_ROWS).read_all()
        if rows.num_rows:
            target.insert_table(table_name, rows)
            out.settings += rows.num_rows
            if table_name == "retention":  # the TTLs read the policies (schema migration 6)
                store.reload_policies()
    for table_name, query in _VISION_EVENTS.items():
        if not _has(source, table_name):  # a source from before Vision Events
            continue
        if table_name == "events" and not _has(source, "events", "warnings"):
            query = query.replace(_EVENTS_WITHOUT_WARNINGS, ",")
        if table_name == "events" and not _has(source, "events", "field_values"):
            query = query.replace(" FROM events", _EVENTS_BEFORE_FIELDS)
        for batch in _batches(source, query, [], chunk_rows):
            if batch.num_rows:
                target.insert_table(table_name, pa.Table.from_batches([batch]))
                out.vision_events += batch.num_rows
    out.alert_events = _copy_events(source, target)
    _copy_keys(source, store)
    target.record(source_name, _DONE, 0, 0, "", 0, copied)
    return out


def _has(source: duckdb.DuckDBPyConnection, table: str, column: str | None = None) -> bool:
    """Whether the source holds the table (and the column, if one is named): an older store may not."""
    found = source.cursor().execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = ?"
                                    " AND column_name = coalesce(?, column_name)", [table, column]).fetchone()
    return bool(found and found[0])


def _copy_keys(source: duckdb.DuckDBPyConnection, store: ClickHouseStore) -> None:
    """The workspaces' keys (a source from before named keys: each workspace's one key, as its
    `default` with every scope, as that upgrade does) and the audit lines the target lacks."""
    if not _has(source, "api_keys"):
        rows = source.cursor().execute(
            "SELECT id, substr(md5(key_hash), 1, 12), 'default', key_hash, ['ingest', 'read', 'manage'], created_at,"
            " NULL, NULL, NULL, false FROM workspaces").fetchall()
    else:
        rows = source.cursor().execute(
            "SELECT ws, key_id, name, key_hash, scopes, created_at, expires_at, revoked_at, last_used_at,"
            " expiry_noted FROM api_keys").fetchall()
    for ws, key_id, name, key_hash, scopes, created, expires, revoked, used, noted in rows:
        store.put_api_key(ApiKeyRecord(ws, key_id, name, key_hash, tuple(scopes), created, expires, revoked,
                                       None, bool(noted)))
        if used is not None:
            store.note_key_use({(ws, key_id): used})
    if not _has(source, "audit_log"):
        return
    lines = source.cursor().execute(
        "SELECT ws, recorded_at, actor, action, target, detail FROM audit_log ORDER BY ws, recorded_at").fetchall()
    held: set[tuple[object, ...]] = set()
    for ws in {line[0] for line in lines}:
        held.update((r.ws, r.at, r.action, r.target) for r in store.audit(ws, 1_000_000))
    for ws, at, actor, action, target, detail in lines:
        if (ws, at, action, target) not in held:
            store.add_audit(AuditRecord(ws, at, actor, action, target, detail))


def _copy_events(source: duckdb.DuckDBPyConnection, target: ImportTarget) -> int:
    """The alert history the target does not hold yet, told apart by (ws, rule, time, state)."""
    events = _batches(source, _EVENTS, [], DEFAULT_CHUNK_ROWS).read_all()
    held = target.alert_event_keys()
    keys = zip(*(events.column(c).to_pylist() for c in ("ws", "rule_id", "fired_at", "state")), strict=True)
    keep = [i for i, key in enumerate(keys) if key not in held]
    if keep:
        target.insert_table("alert_events", events.take(keep))
    return len(keep)
