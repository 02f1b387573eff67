"""The scale-out store: ClickHouse over HTTP, or the same engine in-process (chdb).

One client library, clickhouse-connect, serves both: `clickhouse://user:pass@host:8123/db` talks
HTTP to a server or cluster, `chdb:///path` runs the ClickHouse engine inside this process on a
data folder (clickhouse-connect's chdb backend), so the SQL the tests prove on chdb is the SQL a
cluster runs. Every thread gets its own client: a chdb handle and an HTTP session each serve one
query at a time, and the server's reads run in a thread pool while the writer thread appends.

Writes and identity. ClickHouse has no transactions across tables and no unique keys, so the
writer (one thread per server process, as with DuckDB) makes each batch idempotent itself: it
looks the batch's identities (ws, inference_id, image_index) up in `identity_keys`, a table
ordered by exactly those, and inserts only the rows not stored yet and not repeated earlier in the
batch (the first one wins, as DuckDB's INSERT OR IGNORE). A retried batch, or a commit whose
answer was lost after the server had stored it, is thereby skipped whole and counted once, and
the reads need no `FINAL` on the big table. The alternatives were weaker: insert deduplication
tokens only catch a byte-identical block within a window (a retried request joins a different
group commit), and a ReplacingMergeTree read with `FINAL` or `LIMIT 1 BY` makes every query pay for
what only retries need, and cannot even see a retry whose default time (the arrival time) moved
its sort key. Several replicas writing the same identity within the same instant is the one case
left; the inference table is a ReplacingMergeTree on a key ending in the identity, so merges fold
such a pair when its time agrees (docs/scale-out.md).

Metadata, then device facts, are inserted after the inferences; a failure between them leaves
the inferences stored, and the writer's retry skips them and inserts the rest, so nothing is lost
or counted twice.

A full disk can leave the in-process engine with a broken merged part; a chdb store reloads the
table then, which detaches that part and brings back the parts it merged (`healing.py`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import clickhouse_connect
import pyarrow as pa
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from inferwatch.ingest.metavalues import MetaScalar
from inferwatch.ingest.rows import DeviceRows, InferenceRows, MetadataRows
from inferwatch.query.filters import Filters
from inferwatch.store import base, sketch
from inferwatch.store import rows as answer
from inferwatch.store.base import Cursor, ImageRecord, WorkspaceRecord
from inferwatch.store.clickhouse import class_sums, meta_sums, schema, summaries
from inferwatch.store.clickhouse.alerts import AlertStore
from inferwatch.store.clickhouse.class_sums import ClassSums
from inferwatch.store.clickhouse.dashboard import DashboardReads
from inferwatch.store.clickhouse.drift import DriftReads
from inferwatch.store.clickhouse.events import EventStore
from inferwatch.store.clickhouse.healing import (
    Gate,
    GuardedClient,
    keep_merged_parts,
    merge_tree_tables,
    reload_tables,
)
from inferwatch.store.clickhouse.keys import KeyStore
from inferwatch.store.clickhouse.meta_sums import MetaSums
from inferwatch.store.clickhouse.numeric import NumericReads
from inferwatch.store.clickhouse.performance import PerformanceReads
from inferwatch.store.clickhouse.sql import (
    PREDICTIONS,
    Params,
    bucket,
    group_join,
    prediction_terms,
    quantile,
    where,
)
from inferwatch.store.hours import summed_hours
from inferwatch.store.paging import below, page
from inferwatch.store.rows import EPOCH, IMAGE_COLUMNS, LIST_COLUMNS, naive_utc, now_utc, to_us

# A series point's figures from the inferences (alias `i`): inferences, predictions, average time,
# average confidence.
_SERIES_FIGURES = ("count(), sum(i.n_predictions), avg(i.inference_time),"
                   " sum(i.sum_confidence) / nullIf(sum(i.n_predictions), 0)")
# The same figures from per-hour summaries (the columns of `summaries.summed`).
_SUMMED_FIGURES = ("sum(n), sum(n_preds), sum(time_sum) / nullIf(sum(n_timed), 0),"
                   " sum(confidence_sum) / nullIf(sum(n_preds), 0)")
# Identities looked up per query while deduplicating a batch (bounds the statement's size).
_LOOKUP_CHUNK = 5000
# An identity's time from here on is the default of one stored before schema migration 6 (none).
_NO_TIME_AFTER_US = 4_291_747_200_000_000  # 2106-01-01 UTC
Identity = tuple[int, str]  # (ws, inference_id)
# How many inferences whose metadata came first one process waits for, at most (`_untimed`).
_UNTIMED_AT_MOST = 1_000_000
# Every statement: joins give NULL, not a type's default, where a side has no row (as in SQL).
_SETTINGS: dict[str, Any] = {"join_use_nulls": 1}
# ClickHouse's names of the errors a full or failing disk gives (in its messages as `(NAME)`).
_STORAGE_ERRORS = ("NOT_ENOUGH_SPACE", "CANNOT_WRITE", "CANNOT_FSYNC", "CANNOT_OPEN_FILE", "CANNOT_READ",
                   "CANNOT_CREATE_DIRECTORY", "CANNOT_RENAME", "SYSTEM_ERROR", "No space left on device",
                   "Input/output error")


class ClickHouseStore(ClassSums, MetaSums, DashboardReads, NumericReads, PerformanceReads, DriftReads, AlertStore,
                      KeyStore, EventStore):
    # Other servers may write the same store (replicas behind a load balancer): workspaces are
    # read again now and then (workspaces.KeyRing).
    shared = True

    def __init__(self, connect: Callable[[], Client], name: str, database: str, source_auth: str = "",
                 *, heals: bool = False) -> None:
        self._connect = connect
        self._name = name
        self._database = database
        self._source_auth = source_auth
        self._local = threading.local()
        self._clients: list[GuardedClient] = []
        self._clients_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._class_lock = threading.Lock()
        self._meta_lock = threading.Lock()
        # Whether this process runs the engine (chdb), and so may reload its tables to heal a
        # broken part; a ClickHouse server is its operators' to look after.
        self._heals = heals
        self._gate = Gate()
        # Tables a reload detached but could not attach again (until a reopen manages to).
        self._unattached: set[str] = set()
        # Inferences whose metadata this process wrote before they were stored, at NO_TIME; given
        # their time when they come (`_append_inferences`). Lost with the process, which leaves
        # those rows at NO_TIME: still read right, by every window.
        self._untimed: set[Identity] = set()
        self.closed = False

    # -- opening -------------------------------------------------------------------------
    @classmethod
    def from_url(cls, url: str) -> ClickHouseStore:
        """`clickhouse://user:pass@host:8123/db[?secure=1]` or `chdb:///path[?database=name]`;
        the database is created if missing."""
        parsed = urlparse(url)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        if parsed.scheme == "chdb":
            path = unquote(parsed.path)
            if not path:
                raise ValueError(f"store URL {url!r}: expected chdb:///path")
            database = _database_name(query.get("database", "default"))
            _create_database(clickhouse_connect.get_client(dsn=f"chdb://{path}", settings=_SETTINGS), database)

            def connect() -> Client:
                return clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database, settings=_SETTINGS)

            return cls(connect, f"chdb://{path}", database, heals=True)
        if parsed.scheme in ("clickhouse", "clickhouses"):
            secure = parsed.scheme == "clickhouses" or query.get("secure", "") in ("1", "true")
            database = _database_name(parsed.path.strip("/") or "default")
            args: dict[str, Any] = {
                "host": parsed.hostname or "localhost",
                "port": parsed.port or (8443 if secure else 8123),
                "username": unquote(parsed.username or "default"),
                "password": unquote(parsed.password or ""),
                "secure": secure,
                # Sessions would serialize a client's queries; each thread has its own client anyway.
                "autogenerate_session_id": False,
                # Bound values in the request body, not the URL: the writer's duplicate check binds
                # a batch's ids (up to 5,000), longer than a load balancer lets a URL be.
                "form_encode_query_params": True,
                "settings": _SETTINGS,
            }
            _create_database(clickhouse_connect.get_client(**args), database)

            def connect_http() -> Client:
                return clickhouse_connect.get_client(database=database, **args)

            # The retention dictionary reads the policies back through the server, as this user.
            auth = f" USER {_literal(args['username'])} PASSWORD {_literal(args['password'])}"
            return cls(connect_http, f"{parsed.scheme}://{args['host']}:{args['port']}/{database}", database, auth)
        raise ValueError(f"unsupported store URL {url!r}")

    def _client(self) -> GuardedClient:
        client: GuardedClient | None = getattr(self._local, "client", None)
        if client is None:
            if self.closed:
                raise RuntimeError(f"the store {self._name} is closed")
            client = GuardedClient(self._connect(), self._gate, self._database,
                                   self._heal if self._heals else None)
            self._local.client = client
            with self._clients_lock:
                self._clients.append(client)
        return client

    def _rows(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._client().query(sql, parameters=params).result_rows]

    def _command(self, sql: str, params: dict[str, Any]) -> None:
        self._client().command(sql, parameters=params)

    def _insert(self, table: str, data: pa.Table) -> None:
        self._client().insert_arrow(table, data)

    def _insert_rows(self, table: str, rows: Sequence[Sequence[Any]], columns: Sequence[str]) -> None:
        self._client().insert(table, rows, column_names=columns)

    def close(self) -> None:
        self.closed = True
        with self._clients_lock:
            clients, self._clients = self._clients, []
        for client in clients:
            client.close()

    def storage_failed(self, exc: BaseException) -> bool:
        # The server (or chdb's engine) failing to write or being unreachable, as opposed to a
        # query the data made fail; or a table a reload could not attach again yet.
        if isinstance(exc, (OperationalError, OSError)):
            return True
        if not isinstance(exc, DatabaseError):
            return False
        return any(code in str(exc) for code in _STORAGE_ERRORS) or (
            bool(self._unattached) and "(UNKNOWN_TABLE)" in str(exc))

    def ingesting(self, busy: bool) -> None:
        pass  # ClickHouse sizes each query's threads itself

    def reopen(self) -> None:
        """A failed insert leaves no part, but a merge the full disk met may have left a broken
        one (`healing.py`): chdb's tables are loaded again, as a restart would, while the parts
        such a merge read are still kept. A ClickHouse server is only asked to answer."""
        if self._heals:
            with self._gate.exclusive():
                client = self._client().unguarded()
                reload_tables(client, sorted(set(merge_tree_tables(client)) | self._unattached), self._unattached)
        self._rows("SELECT 1", {})

    def _heal(self, table: str, seen: int) -> None:
        """Reloads `table`, which a statement found a broken part of, unless a reload was done
        since that statement began (it may have dealt with the part already)."""
        with self._gate.exclusive():
            if self._gate.generation == seen:
                reload_tables(self._client().unguarded(), [table], self._unattached)

    def checkpoint(self) -> None:
        """Nothing to fold: every insert is a durable part of its own. (A ClickHouse store is backed
        up with ClickHouse's BACKUP, not by copying files.)"""

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> int:
        client = self._client()
        client.command(schema.SCHEMA_VERSION_TABLE)
        current = int(client.query("SELECT max(version) FROM schema_version").result_rows[0][0] or 0)
        for version, statements in enumerate(schema.MIGRATIONS, 1):
            if version <= current:
                continue
            # Each statement is IF NOT EXISTS: a migration cut short is simply run again.
            for statement in statements:
                client.command(statement.replace("{db}", self._database).replace("{auth}", self._source_auth))
            client.insert("schema_version", [[version, now_utc()]], column_names=["version", "applied_at"])
        if self._heals:
            keep_merged_parts(client.unguarded())
        return len(schema.MIGRATIONS)

    # -- writes ---------------------------------------------------------------------------
    def append(self, rows: InferenceRows, meta: MetadataRows, devices: DeviceRows | None = None) -> int:
        """Inserts the inferences not stored yet, then metadata, then device facts; returns how
        many inferences were new."""
        with self._write_lock:
            new, times = self._append_inferences(rows.to_arrow()) if len(rows) else (0, {})
            if len(meta):
                self._insert("metadata", self._timed(meta.to_arrow(), times))
            if devices:
                self._insert("device_reports", _device_reports(devices.to_arrow()))
            return new

    def _append_inferences(self, batch: pa.Table) -> tuple[int, dict[Identity, set[int]]]:
        """Inserts the rows whose identity is neither stored nor earlier in the batch (the first
        one wins). Returns how many, and the times (epoch microseconds) of the batch's inferences,
        stored and new, for their metadata (`_timed`)."""
        wss, ids, indexes = (batch.column(c).to_pylist() for c in ("ws", "inference_id", "image_index"))
        times_us = batch.column("ts").cast(pa.int64()).to_pylist()
        stored = self._identities({(ws, inference_id) for ws, inference_id in zip(wss, ids, strict=True)})
        seen = {(ws, inference_id, index) for (ws, inference_id), images in stored.items() for index in images}
        times = {key: set(images.values()) for key, images in stored.items()}
        keep: list[int] = []
        # Metadata to be given another time: of inferences stored at one time and now given an
        # image at another (NO_TIME), and of those whose metadata came first (theirs).
        retime: dict[Identity, int] = {}
        for i, (ws, inference_id, index) in enumerate(zip(wss, ids, indexes, strict=True)):
            if (ws, inference_id, index) in seen:
                continue
            seen.add((ws, inference_id, index))
            keep.append(i)
            before = stored.get((ws, inference_id))
            if before and len(set(before.values())) == 1 and times_us[i] not in before.values():
                retime[ws, inference_id] = 0
            times.setdefault((ws, inference_id), set()).add(times_us[i])
        if keep:
            self._insert("inferences", batch if len(keep) == batch.num_rows else batch.take(keep))
        for key in self._untimed.intersection(times) if self._untimed else ():
            self._untimed.discard(key)
            retime.setdefault(key, next(iter(times[key])) if len(times[key]) == 1 else 0)
        if retime:
            self._retime_metadata(retime)
        return len(keep), times

    def _identities(self, wanted: set[Identity]) -> dict[Identity, dict[int, int]]:
        """The stored images of these inferences, each image's time (epoch microseconds): a
        primary-key lookup in `identity_keys`."""
        per_ws: dict[int, list[str]] = {}
        for ws, inference_id in wanted:
            per_ws.setdefault(ws, []).append(inference_id)
        found: dict[Identity, dict[int, int]] = {}
        for ws, id_list in per_ws.items():
            id_list.sort()
            for at in range(0, len(id_list), _LOOKUP_CHUNK):
                p = Params()
                for inference_id, index, ts_us in self._rows(
                    "SELECT DISTINCT inference_id, image_index, toUnixTimestamp64Micro(ts) FROM identity_keys"
                    f" WHERE ws = {p.add(ws, 'Int32')}"
                    f" AND inference_id IN {p.add(id_list[at:at + _LOOKUP_CHUNK], 'Array(String)')}",
                    p,
                ):
                    found.setdefault((ws, inference_id), {})[index] = ts_us
        return found

    def _timed(self, meta: pa.Table, times: dict[Identity, set[int]]) -> pa.Table:
        """The metadata rows with their inference's time (`ts`, schema migration 13): the one
        time of its images, from this batch or the stored identities; NO_TIME (the epoch) where
        the inference is not stored yet, or its images were sent at different times (an identity
        from before migration 6 has no time, its default lies in 2106)."""
        keys = list(zip(meta.column("ws").to_pylist(), meta.column("inference_id").to_pylist(), strict=True))
        missing = {key for key in keys if key not in times}
        if missing:
            times = {**times, **{key: set(images.values()) for key, images in self._identities(missing).items()}}
        ts_us = []
        for key in keys:
            at = times.get(key, ())
            ts_us.append(next(iter(at)) if len(at) == 1 and next(iter(at)) < _NO_TIME_AFTER_US else 0)
            if not at and len(self._untimed) < _UNTIMED_AT_MOST:
                self._untimed.add(key)
        return meta.append_column("ts", pa.array(ts_us, pa.timestamp("us")))

    def _retime_metadata(self, times: dict[Identity, int]) -> None:
        """Gives these inferences' metadata rows these times (epoch microseconds; 0 for
        NO_TIME), as newer copies with the same write time: the engine keeps the last inserted
        of equal versions, and a windowed read takes the row it needs either way."""
        per_ws: dict[int, dict[str, int]] = {}
        for (ws, inference_id), ts_us in times.items():
            per_ws.setdefault(ws, {})[inference_id] = ts_us
        for ws, given in per_ws.items():
            p = Params()
            ids = p.add(list(given), "Array(String)")
            micros = p.add(list(given.values()), "Array(Int64)")
            to = f"fromUnixTimestamp64Micro(transform(r.inference_id, {ids}, {micros}, toInt64(0)), 'UTC')"
            # `r.ts`: the replaced column's name alone would be the new value's.
            self._command(
                f"INSERT INTO metadata SELECT * REPLACE ({to} AS ts) FROM metadata AS r FINAL"
                f" WHERE ws = {p.add(ws, 'Int32')} AND inference_id IN {ids} AND r.ts != {to}", p)

    def workspaces(self) -> list[WorkspaceRecord]:
        rows = self._rows("SELECT id, slug, key_hash, created_at FROM workspaces FINAL ORDER BY id", {})
        return [WorkspaceRecord(*row) for row in rows]

    def create_workspace(self, slug: str, key_hash: str) -> WorkspaceRecord:
        with self._write_lock:
            (top,) = self._rows("SELECT max(id) FROM workspaces FINAL", {})[0]
            now = now_utc()
            record = WorkspaceRecord(int(top or 0) + 1, slug, key_hash, now)
            self._client().insert(
                "workspaces", [[record.id, slug, key_hash, now, now]],
                column_names=["id", "slug", "key_hash", "created_at", "updated_at"])
        return record

    def set_key_hash(self, slug: str, key_hash: str) -> WorkspaceRecord:
        with self._write_lock:
            p = Params()
            rows = self._rows(
                f"SELECT id, slug, key_hash, created_at FROM workspaces FINAL WHERE slug = {p.add(slug, 'String')}", p)
            if not rows:
                raise KeyError(slug)
            old = WorkspaceRecord(*rows[0])
            self._client().insert(
                "workspaces", [[old.id, slug, key_hash, old.created_at, now_utc()]],
                column_names=["id", "slug", "key_hash", "created_at", "updated_at"])
        return WorkspaceRecord(old.id, slug, key_hash, old.created_at)

    # -- reads ----------------------------------------------------------------------------
    def list_inferences(
        self, ws: int, filters: Filters, after: Cursor | None, limit: int
    ) -> tuple[list[base.InferenceRow], Cursor | None]:
        def newest() -> datetime | None:
            q = Params()
            found = self._rows(f"SELECT max(ts), count() FROM inferences WHERE ws = {q.add(ws, 'Int32')}", q)
            return found[0][0] if found and found[0][1] else None

        def fetch(lowest: datetime | None) -> list[tuple[Any, ...]]:
            # In widening windows (store/paging.py), each one the filters' start (above theirs).
            # The sort key leads with the model, not the time, so without a window a page would
            # read and sort every row of the workspace; a window lets the monthly partitions and
            # the key's time column skip most of them, and a metadata term read only the window's
            # metadata (`sql.metadata_rows`).
            p = Params()
            clause = where(ws, filters if lowest is None else replace(filters, start=lowest), p)
            if after is not None:
                clause += " AND " + below(p.time(EPOCH + timedelta(microseconds=after.ts_us)),
                                          p.add(after.inference_id, "String"), p.add(after.image_index, "Int32"))
            return self._rows(f"SELECT {LIST_COLUMNS} FROM inferences WHERE {clause}"
                              f" ORDER BY ts DESC, inference_id DESC, image_index DESC LIMIT {int(limit) + 1:d}", p)

        found, following = page(filters, after, limit, newest, fetch)
        return [answer.inference(row) for row in found], following

    def get_inference(self, ws: int, inference_id: str) -> list[base.InferenceRow]:
        p = Params()
        rows = self._rows(
            f"SELECT {LIST_COLUMNS} FROM inferences WHERE ws = {p.add(ws, 'Int32')}"
            f" AND inference_id = {p.add(inference_id, 'String')} ORDER BY image_index",
            p,
        )
        return [answer.inference(row) for row in rows]

    def metadata_of(self, ws: int, inference_ids: list[str]) -> dict[str, dict[str, MetaScalar]]:
        if not inference_ids:
            return {}
        p = Params()
        rows = self._rows(
            "SELECT inference_id, field_name, field_value, field_type FROM metadata FINAL"
            f" WHERE ws = {p.add(ws, 'Int32')} AND inference_id IN {p.add(sorted(set(inference_ids)), 'Array(String)')}"
            " ORDER BY field_name",
            p,
        )
        return answer.metadata_of(rows)

    def totals_and_series(self, ws: int, filters: Filters, bucket_size: timedelta, group_by: str | None
                          ) -> tuple[base.Totals, list[base.SeriesPoint]]:
        field = meta_sums.field_of(filters, group_by, bucket_size)
        if field is not None:
            return self._totals_and_series_by_value(ws, filters, field, bucket_size, group_by)
        if (summed_hours(filters) is not None and not filters.classes) or group_by == "class":
            # The totals come from the summaries, or the series counts predictions, not inferences.
            return self.totals(ws, filters), self.series(ws, filters, bucket_size, group_by)
        # Neither reads the summaries (a metadata, tag or confidence term, say): one pass over the
        # window's rows gives the series' points and, as the grouping set (), the totals, where
        # two passes each joined the window to its metadata (docs/performance.md).
        p = Params()
        t = bucket("i.ts", bucket_size, p)
        g, join = group_join(ws, filters, group_by, p)
        rows = self._rows(
            f"SELECT {t} AS t, {g} AS g, {_SERIES_FIGURES}, {quantile('i.inference_time', 0.5, 'times')},"
            f" {quantile('i.inference_time', 0.95, 'times', sorted_already=True)}, uniqExact(i.device_id),"
            f" uniqExact(i.model_id), grouping(t) FROM inferences i{join} WHERE {where(ws, filters, p, 'i')}"
            " GROUP BY GROUPING SETS ((t, g), ()) ORDER BY t, g NULLS LAST", p)
        # grouping(t) is 1 in the row of the set that does not group by it: the totals.
        (n, predictions, avg_time, confidence, p50, p95, devices, models), = (
            row[2:10] for row in rows if row[10] == 1)
        return (base.Totals(n, predictions, avg_time, p50, p95, confidence, devices, models),
                answer.records(base.SeriesPoint, [row[:6] for row in rows if row[10] == 0]))

    def _totals_and_series_by_value(self, ws: int, filters: Filters, field: str, bucket_size: timedelta,
                                    group_by: str | None) -> tuple[base.Totals, list[base.SeriesPoint]]:
        """Both from the per-hour sums of the field's values, in one pass (grouping sets by time
        and group, and () for the totals): one check of which hours changed, not two."""
        hours = meta_sums.hours_of(filters)
        self.current_meta_hours(ws, field, hours)
        p = Params()
        t = bucket("hour", bucket_size, p)
        rows = self._rows(
            f"SELECT {t} AS t, {meta_sums.group_column(group_by)} AS g, {_SUMMED_FIGURES}, sumMap(times),"
            " uniqExact(device_id), uniqExact(model_id), grouping(t)"
            f" FROM {meta_sums.summed(ws, field, filters, hours, p)}"
            " GROUP BY GROUPING SETS ((t, g), ()) ORDER BY t, g NULLS LAST", p)
        # grouping(t) is 1 in the row of the set that does not group by it: the totals (there
        # even when nothing matched).
        (n, predictions, avg_time, confidence, times, devices, models), = (row[2:9] for row in rows if row[9] == 1)
        p50, p95 = (sketch.quantile(times.items(), q) for q in (0.5, 0.95))
        return (base.Totals(n, predictions, avg_time, p50, p95, confidence, devices, models),
                answer.records(base.SeriesPoint, [row[:6] for row in rows if row[9] == 0]))

    def totals(self, ws: int, filters: Filters) -> base.Totals:
        p = Params()
        hours = None if filters.classes else summed_hours(filters)
        field = meta_sums.field_of(filters, None)
        if hours is not None or field is not None:
            # Counts and sums from the per-hour summaries (of a metadata value, with a term on
            # one); the percentiles from their time buckets.
            if field is not None:
                hours = meta_sums.hours_of(filters)
                self.current_meta_hours(ws, field, hours)
                source = meta_sums.summed(ws, field, filters, hours, p)
            else:
                assert hours is not None
                source = summaries.summed(ws, filters, hours, p, hourly=False)
            (row,) = self._rows(
                f"SELECT {_SUMMED_FIGURES}, uniqExact(device_id), uniqExact(model_id), sumMap(times) FROM {source}", p)
            n, predictions, avg_time, confidence, devices, models, times = row
            p50, p95 = (sketch.quantile(times.items(), q) for q in (0.5, 0.95))
            return base.Totals(n, predictions, avg_time, p50, p95, confidence, devices, models)
        clause = where(ws, filters, p)
        (row,) = self._rows(
            "SELECT count(), sum(n_predictions), avg(inference_time),"
            # Both percentiles from one sort of the times.
            f" {quantile('inference_time', 0.5, 'times')},"
            f" {quantile('inference_time', 0.95, 'times', sorted_already=True)},"
            " sum(sum_confidence) / nullIf(sum(n_predictions), 0),"
            f" uniqExact(device_id), uniqExact(model_id) FROM inferences WHERE {clause}",
            p,
        )
        return base.Totals(*row)

    def series(
        self, ws: int, filters: Filters, bucket_size: timedelta, group_by: str | None
    ) -> list[base.SeriesPoint]:
        p = Params()
        hours = summed_hours(filters, bucket_size)
        field = meta_sums.field_of(filters, group_by, bucket_size)
        source = None
        if hours is not None and group_by in (None, "model_id", "device_id") and not filters.classes:
            source = summaries.summed(ws, filters, hours, p)
        elif field is not None:
            # From the per-hour sums of the field's values.
            whole = meta_sums.hours_of(filters)
            self.current_meta_hours(ws, field, whole)
            source = meta_sums.summed(ws, field, filters, whole, p)
        if source is not None:
            t = bucket("hour", bucket_size, p)
            return answer.records(base.SeriesPoint, self._rows(
                f"SELECT {t} AS t, {meta_sums.group_column(group_by)} AS g, {_SUMMED_FIGURES} FROM {source}"
                " GROUP BY t, g ORDER BY t, g NULLS LAST", p))
        if hours is not None and group_by == "class":
            # Predictions per class from the per-class sums (`class_sums.py`).
            self.current_class_hours(ws, hours)
            t = bucket("hour", bucket_size, p)
            return answer.records(base.SeriesPoint, self._rows(
                f"SELECT {t} AS t, class AS g, sum(n), sum(n), sum(time_sum) / nullIf(sum(n_timed), 0),"
                " sum(confidence_sum) / nullIf(sum(n_confidence), 0)"
                f" FROM {class_sums.predictions(ws, filters, hours, p)} GROUP BY t, g ORDER BY t, g", p))
        t = bucket("i.ts", bucket_size, p)
        if group_by == "class":
            # Counted per prediction: detections of each class (a classifier's verdicts).
            clause = where(ws, filters, p, "i")
            outer = f" WHERE {prediction_terms(filters, p)}" if filters.on_predictions else ""
            sql = (f"SELECT t, p_class AS g, count(), count(), avg(inference_time), avg(p_confidence) FROM ("
                   f"SELECT {t} AS t, i.inference_time AS inference_time, p_class, p_confidence"
                   f" FROM inferences i{PREDICTIONS} WHERE {clause}"
                   f"){outer} GROUP BY t, g ORDER BY t, g")
        else:
            g, join = group_join(ws, filters, group_by, p)
            sql = (f"SELECT {t} AS t, {g} AS g, {_SERIES_FIGURES} FROM inferences i{join}"
                   f" WHERE {where(ws, filters, p, 'i')} GROUP BY t, g ORDER BY t, g NULLS LAST")
        return answer.records(base.SeriesPoint, self._rows(sql, p))

    def class_stats(self, ws: int, start: datetime, end: datetime, model_ids: tuple[str, ...]) -> base.ClassStats:
        """Figures of [start, end): totals, inferences per model, and per model x predicted class.

        The same three passes as DuckDB's (per-model sums, the predictions, the inferences per
        class from `classes`), and the totals summed from the per-model sums in the same way, so
        the floating-point figures come out the same.
        """
        filters = Filters(start=start, end=end, model_ids=model_ids)
        hours = summed_hours(filters)
        if hours is not None:
            return self._class_stats_summed(ws, filters, hours)
        p = Params()
        clause = where(ws, filters, p)
        per_model = self._rows(
            "SELECT model_id, count(), sum(sum_confidence), sum(n_predictions), sum(inference_time),"
            f" count(inference_time) FROM inferences WHERE {clause} GROUP BY model_id", p)
        predictions = self._rows(
            f"SELECT i.model_id, p_class, count(), avg(p_confidence), {quantile('p_confidence', 0.5, 'q50')},"
            f" avg(i.inference_time) FROM inferences i{PREDICTIONS} WHERE {clause} GROUP BY i.model_id, p_class",
            p)
        per_class = self._rows(
            f"SELECT model_id, c, count(), arraySort(groupUniqArray(v)) FROM (SELECT model_id, arrayJoin(classes) AS c,"
            f" {class_sums.VERSION} AS v FROM inferences i WHERE {clause}) GROUP BY model_id, c", p)
        return answer.class_stats(per_model, predictions,
                                  {(m, c): (k, list(versions)) for m, c, k, versions in per_class})

    def _class_stats_summed(self, ws: int, filters: Filters, hours: tuple[datetime, datetime]) -> base.ClassStats:
        """`class_stats` from the per-hour summaries of the window's whole hours and the rows of
        its partial first and last hours: per model from `hour_sums`, per class from the
        per-class sums (`class_sums.py`); counts and sums exact, the median confidence from the
        1000 confidence bins (within `sketch.CONFIDENCE_ERROR`), as the DuckDB store reads its sums."""
        self.current_class_hours(ws, hours)
        p = Params()
        per_model = self._rows(
            "SELECT model_id, sum(n), sum(confidence_sum), sum(n_preds), sum(time_sum), sum(n_timed)"
            f" FROM {summaries.summed(ws, filters, hours, p, hourly=False)} GROUP BY model_id", p)
        p = Params()
        figures = self._rows(
            "SELECT model_id, class, sum(n), sum(confidence_sum) / nullIf(sum(n_confidence), 0),"
            f" sum(time_sum) / nullIf(sum(n_timed), 0) FROM {class_sums.predictions(ws, filters, hours, p)}"
            " GROUP BY model_id, class", p)
        p = Params()
        bins = {(m, c): counts for m, c, counts in self._rows(
            f"SELECT model_id, class, sumMap(bins) FROM {class_sums.bins(ws, filters, hours, p)}"
            " GROUP BY model_id, class", p)}
        predictions = [(m, c, k, confidence, sketch.confidence_quantile(
            [(b, n) for b, n in bins.get((m, c), {}).items() if b != class_sums.NO_CONFIDENCE], 0.5), time)
            for m, c, k, confidence, time in figures]
        p = Params()
        per_class = self._rows(
            "SELECT model_id, class, sum(n), arraySort(groupUniqArray(version))"
            f" FROM {class_sums.holding(ws, filters, hours, p)} GROUP BY model_id, class", p)
        return answer.class_stats(per_model, predictions,
                                  {(m, c): (k, list(versions)) for m, c, k, versions in per_class})

    def devices(self, ws: int, start: datetime, end: datetime) -> list[base.Device]:
        """Every device the workspace heard of: reported by a server, or named by an inference."""
        p = Params()
        w = p.add(ws, "Int32")
        lo, hi = p.time(naive_utc(start)), p.time(naive_utc(end))
        # Aliases differ from column names: in ClickHouse an alias shadows the column everywhere
        # in its SELECT, the WHERE included.
        return answer.records(base.Device, self._rows(
            "SELECT coalesce(d.did, s.did) AS id, coalesce(d.first, s.first_received),"
            "  if(d.last IS NULL, s.last_received, if(s.last_received IS NULL, d.last,"
            "   greatest(d.last, s.last_received))),"
            "  s.last_ts, d.sid, d.version, d.host, d.os, ifNull(d.labels, []), ifNull(s.n, 0)"
            " FROM (SELECT device_id AS did, min(first_seen) AS first, max(last_seen) AS last,"
            "   argMaxIfMerge(server_id) AS sid, argMaxIfMerge(server_version) AS version,"
            "   argMaxIfMerge(hostname) AS host, argMaxIfMerge(platform) AS os, argMaxIfMerge(tags) AS labels"
            f"   FROM devices WHERE ws = {w} GROUP BY device_id) d"
            " FULL OUTER JOIN (SELECT toString(assumeNotNull(device_id)) AS did, max(ts) AS last_ts,"
            "   max(received_at) AS last_received, min(received_at) AS first_received,"
            f"   countIf(ts >= {lo} AND ts < {hi}) AS n"
            f"   FROM inferences WHERE ws = {w} AND device_id IS NOT NULL GROUP BY device_id) s"
            " ON s.did = d.did ORDER BY id",
            p,
        ))

    def metadata_fields(self, ws: int, top: int) -> list[base.MetadataField]:
        # One pass over the latest values (FINAL), counted per value, then per field with its top
        # values: at 10 million inferences 357 ms, where a pass per field and one per value
        # took 569 (docs/performance.md).
        p = Params()
        rows = self._rows(
            "SELECT field_name, count(), sum(n), arrayDistinct(arrayFlatten(groupArray(kinds))),"
            f" arraySlice(arraySort(v -> (-v.2, v.1), groupArray((field_value, n))), 1, {int(top):d})"
            " FROM (SELECT field_name, field_value, count() AS n, groupUniqArray(field_type) AS kinds"
            f" FROM metadata FINAL WHERE ws = {p.add(ws, 'Int32')} GROUP BY field_name, field_value)"
            " GROUP BY field_name ORDER BY field_name",
            p,
        )
        return answer.metadata_fields([row[:4] for row in rows],
                                      [(name, value, n) for name, *_, tops in rows for value, n in tops])

    # -- images ---------------------------------------------------------------------------
    def insert_image(self, image: ImageRecord) -> bool:
        with self._write_lock:
            stored = self.image(image.ws, image.sha256)
            if stored is not None and (stored.inference_id is not None or image.inference_id is None):
                return False
            row = image if stored is None else _with_inference(stored, image.inference_id)
            self._client().insert(
                "images",
                [[row.ws, row.sha256, row.inference_id, row.content_type, row.width, row.height, row.size_bytes,
                  row.name, row.project, row.batch, row.tags, naive_utc(row.uploaded_at), to_us(now_utc())]],
                column_names=[*IMAGE_COLUMNS.split(", "), "version"])
            return stored is None

    def _image(self, ws: int, term: str, value: str) -> ImageRecord | None:
        p = Params()
        rows = self._rows(
            f"SELECT {IMAGE_COLUMNS} FROM images FINAL WHERE ws = {p.add(ws, 'Int32')}"
            f" AND {term} = {p.add(value, 'String')} ORDER BY uploaded_at DESC, sha256 LIMIT 1",
            p,
        )
        return ImageRecord(*rows[0]) if rows else None

    def image(self, ws: int, sha256: str) -> ImageRecord | None:
        return self._image(ws, "sha256", sha256)

    def image_of_inference(self, ws: int, inference_id: str) -> ImageRecord | None:
        return self._image(ws, "inference_id", inference_id)


def _with_inference(image: ImageRecord, inference_id: str | None) -> ImageRecord:
    return ImageRecord(image.ws, image.sha256, inference_id, image.content_type, image.width, image.height,
                       image.size_bytes, image.name, image.project, image.batch, image.tags, image.uploaded_at)


def _device_reports(table: pa.Table) -> pa.Table:
    """`DeviceRows` as the reports table takes them: tags never NULL, with a flag saying whether
    the report carried any (a NULL list means "not reported", an empty one clears them)."""
    tags = table.column("tags").to_pylist()
    return table.set_column(
        table.schema.get_field_index("tags"), "tags", pa.array([t or [] for t in tags], pa.list_(pa.string()))
    ).append_column("tags_reported", pa.array([int(t is not None) for t in tags], pa.uint8()))


def _create_database(client: Client, database: str) -> None:
    try:
        if database != "default":
            client.command(f"CREATE DATABASE IF NOT EXISTS {database}")
    finally:
        client.close()


def _database_name(name: str) -> str:
    """The store URL's database: a plain name, since the schema writes it into SQL strings (the
    retention dictionary's name and source)."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,63}", name):
        raise ValueError(f"database name {name!r}: letters, digits and _ only")
    return name


def _literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"
