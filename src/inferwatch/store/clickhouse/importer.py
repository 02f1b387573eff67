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
from datetime import timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from inferwatch.store.base import StoreLocked, WorkspaceRecord
from inferwatch.store.clickhouse import ClickHouseStore, schema
from inferwatch.store.rows import EPOCH

DEFAULT_CHUNK_ROWS = 50_000
_STEP = "inferences"
_DONE = "done"

_INFERENCES = f"SELECT {', '.join(schema.INFERENCE_COLUMNS)} FROM inferences"
_ORDER = " ORDER BY ts, ws, inference_id, image_index"
# After a recorded row, in the order above; `ts >= ?` first lets DuckDB skip row groups by time.
_AFTER = (" WHERE ts >= ? AND (ts > ? OR (ws > ? OR (ws = ? AND (inference_id > ?"
          " OR (inference_id = ? AND image_index > ?)))))")
# Everything else, shaped as the target's tables take it.
_TABLES = {
    "metadata": "SELECT ws, inference_id, field_name, field_value, updated_at FROM metadata",
    "device_reports": ("SELECT ws, device_id, first_seen, last_seen, server_id, server_version, hostname, platform,"
                       " tags, 1::UTINYINT AS tags_reported FROM devices"),
    "images": ("SELECT ws, sha256, inference_id, content_type, width, height, size_bytes, name, project, batch,"
               " tags, uploaded_at, epoch_us(uploaded_at)::UBIGINT AS version FROM images"),
}
_SETTINGS = {
    "model_settings": "SELECT ws, model_id, ground_truth, updated_at FROM model_settings",
    "alert_rules": "SELECT ws, rule_id, spec, 0::UTINYINT AS deleted, created_at, updated_at FROM alert_rules",
    "alert_state": "SELECT ws, rule_id, state, since, value, evaluated_at FROM alert_state",
    "retention": "SELECT ws, max_days, max_inferences, image_max_days, updated_at FROM retention",
}
_EVENTS = ("SELECT ws, rule_id, fired_at, state, previous, value, notified::UTINYINT AS notified, detail"
           " FROM alert_events ORDER BY ws, rule_id, fired_at")


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


def copy_store(source: duckdb.DuckDBPyConnection, source_name: str, target: ClickHouseStore,
               chunk_rows: int = DEFAULT_CHUNK_ROWS,
               progress: Callable[[int, int], None] = lambda done, total: None) -> Copied:
    """Copies everything; `progress(copied, total)` after each chunk of inferences."""
    out = Copied()
    target.migrate()
    for ws_id, slug, key_hash, created_at in source.cursor().execute(
            "SELECT id, slug, key_hash, created_at FROM workspaces ORDER BY id").fetchall():
        target.put_workspace(WorkspaceRecord(ws_id, slug, key_hash, created_at))
        out.workspaces += 1

    (total,) = source.cursor().execute("SELECT count(*) FROM inferences").fetchone() or (0,)
    position = target.import_position(source_name, _STEP)
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
        target.record_import(source_name, _STEP, ts_us, batch.column("ws")[last].as_py(),
                             batch.column("inference_id")[last].as_py(),
                             batch.column("image_index")[last].as_py(), copied)
        progress(copied, total)

    for table_name, query in _TABLES.items():
        count = 0
        for batch in _batches(source, query, [], chunk_rows):
            if batch.num_rows:
                target.insert_table(table_name, pa.Table.from_batches([batch]))
                count += batch.num_rows
        if table_name == "metadata":
            out.metadata = count
        elif table_name == "device_reports":
            out.devices = count
        else:
            out.images = count
    for table_name, query in _SETTINGS.items():
        rows = _batches(source, query, [], DEFAULT_CHUNK_ROWS).read_all()
        if rows.num_rows:
            target.insert_table(table_name, rows)
            out.settings += rows.num_rows
            if table_name == "retention":  # the TTLs read the policies (schema migration 6)
                target.reload_policies()
    out.alert_events = _copy_events(source, target)
    target.record_import(source_name, _DONE, 0, 0, "", 0, copied)
    return out


def _copy_events(source: duckdb.DuckDBPyConnection, target: ClickHouseStore) -> int:
    """The alert history the target does not hold yet, told apart by (ws, rule, time, state)."""
    events = _batches(source, _EVENTS, [], DEFAULT_CHUNK_ROWS).read_all()
    held = target.alert_event_keys()
    keys = zip(*(events.column(c).to_pylist() for c in ("ws", "rule_id", "fired_at", "state")), strict=True)
    keep = [i for i, key in enumerate(keys) if key not in held]
    if keep:
        target.insert_table("alert_events", events.take(keep))
    return len(keep)
