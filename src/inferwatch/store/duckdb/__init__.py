"""The embedded store: one DuckDB file, owned by one process.

Every call takes its own cursor (a DuckDB connection to the same database), so reads run in
parallel in the server's thread pool while the writer thread appends.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from dataclasses import astuple
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from inferwatch.ingest.metavalues import MetaScalar
from inferwatch.ingest.rows import DeviceRows, InferenceRows, MetadataRows
from inferwatch.query.filters import Filters
from inferwatch.store import base, sketch
from inferwatch.store import rows as answer
from inferwatch.store.base import Cursor, ImageRecord, StoreLocked, WorkspaceRecord
from inferwatch.store.duckdb import schema
from inferwatch.store.duckdb.alerts import AlertStore
from inferwatch.store.duckdb.cache import Caches, meta_filter, sums
from inferwatch.store.duckdb.cache.meta_counts import MetadataCounts
from inferwatch.store.duckdb.cache.meta_groups import series_rows as meta_series
from inferwatch.store.duckdb.cache.sums import confidence_bins, edge_where, rows_per_class, sums_where, time_buckets
from inferwatch.store.duckdb.dashboard import DashboardReads
from inferwatch.store.duckdb.drift import DriftReads
from inferwatch.store.duckdb.events import EventStore, UseCaseCache
from inferwatch.store.duckdb.image_cache import ImageCache
from inferwatch.store.duckdb.keys import KeyStore
from inferwatch.store.duckdb.numeric import NumericReads
from inferwatch.store.duckdb.performance import PerformanceReads
from inferwatch.store.duckdb.sql import Params, prediction_terms, transaction, where
from inferwatch.store.paging import below, page
from inferwatch.store.rows import IMAGE_COLUMNS, LIST_COLUMNS

# What DuckDB's messages say when the disk, not the data, made a statement fail.
_STORAGE_ERRORS = ("Could not write", "Could not read", "Could not fsync", "No space left", "Input/output error",
                   "invalidated")
# Images of one inference id looked up by their identity keys before any scan (see get_inference).
_PROBED_IMAGES = 16


# A series point's figures over the inferences (alias `i`) of its bucket and group.
_FIGURES = ("count(*) AS count, coalesce(sum(n_predictions), 0) AS predictions,"
            " avg(inference_time) AS avg_inference_time,"
            " sum(sum_confidence) / nullif(sum(n_predictions), 0) AS avg_confidence")


def joined_meta_series(con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, field: str,
                       bucket: timedelta) -> list[tuple[Any, ...]]:
    """The series by a metadata field in one pass joining the inferences to it."""
    p = Params()
    return con.execute(
        f"SELECT time_bucket({p.add(bucket)}, ts) AS t, m.field_value AS g, {_FIGURES}"
        " FROM inferences i LEFT JOIN (SELECT id_key, field_value FROM metadata"
        f" WHERE ws = {p.add(ws)} AND field_name = {p.add(field)}) m ON m.id_key = i.id_key"
        f" WHERE {where(ws, filters, p, 'i')} GROUP BY ALL ORDER BY 1, 2 NULLS LAST", p).fetchall()


# Inferences (alias `i`) in the shape of the per-hour sums, one row each.
_ROWS_AS_SUMS = (
    "SELECT ts AS hour, model_id, device_id, task, 1 AS n, n_predictions, sum_confidence AS confidence_sum,"
    " (inference_time IS NOT NULL)::BIGINT AS n_timed, coalesce(inference_time, 0) AS time_sum, ts AS last_ts"
    " FROM inferences i"
)


class DuckDBStore(DashboardReads, NumericReads, PerformanceReads, DriftReads, AlertStore, KeyStore, EventStore):
    """`caches=False` reads every figure from the inferences themselves (`cache/`): the
    reference the cached answers are tested against."""

    shared = False  # one process holds the file

    def __init__(self, path: str, caches: bool = True) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        try:
            self._db = duckdb.connect(path, config=schema.CONFIG)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(str(exc)) from None
            raise
        self._write_lock = threading.Lock()
        self._caches = Caches(on=caches)
        self._counts = MetadataCounts(on=caches)
        self._use_cases = UseCaseCache()
        self._images = ImageCache()
        self._threads: int | None = None  # DuckDB's own while the writer runs it on one (`ingesting`)
        self.closed = False

    def storage_failed(self, exc: BaseException) -> bool:
        # An I/O error, a commit whose log could not be written ("Failed to commit: Could not
        # write file ...wal"), or a fatal error (after which DuckDB refuses every statement until
        # the database is opened again); a constraint or a conversion is the data's.
        if isinstance(exc, (duckdb.IOException, duckdb.FatalException, OSError)):
            return True
        if isinstance(exc, duckdb.ConnectionException) and not self.closed:
            return True  # a read under way when the writer reopened the file: retry it
        return isinstance(exc, duckdb.Error) and any(text in str(exc) for text in _STORAGE_ERRORS)

    def reopen(self) -> None:
        """Opens the file again: DuckDB replays its log, so every committed row is back, and a
        commit that failed midway is not. Reads under way on the old database fail once."""
        with self._write_lock:
            with contextlib.suppress(duckdb.Error):
                self._db.close()
            # The per-hour sums' notes stay right: a commit is noted only once it succeeded.
            self._db = duckdb.connect(self._path, config=schema.CONFIG)
            self._images.changed()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        return self._db.cursor()

    def ingesting(self, busy: bool) -> None:
        """One thread while the writer is busy, the threads DuckDB had before once it is idle.
        DuckDB hands the tasks of even a small INSERT to its worker threads; under load those
        wait for a core that the event loop and the clients hold, and the writer, which every
        request waits on, waits with them (batch create at 16 connections: 12 to 14 % fewer
        events/s, and 11 to 18 µs more CPU an event, docs/performance.md). A read meanwhile runs
        on its own thread too; on a quiet store, reads have every thread."""
        con = self._cursor()
        if busy:
            self._threads = int(con.execute("SELECT current_setting('threads')").fetchone()[0])  # type: ignore[index]
            con.execute("SET threads = 1")
        elif self._threads is not None:
            con.execute(f"SET threads = {self._threads}")
            self._threads = None

    def close(self) -> None:
        self.closed = True
        self._db.close()

    def checkpoint(self) -> None:
        # Not FORCE: a read under way is not aborted; the copy takes the log too if it stays.
        with self._write_lock:
            self._cursor().execute("CHECKPOINT")

    # -- schema ---------------------------------------------------------------------------
    def migrate(self) -> int:
        con = self._cursor()
        con.execute(
            "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY,"
            " applied_at TIMESTAMP NOT NULL)"
        )
        (current,) = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone() or (0,)
        for version, ddl in enumerate(schema.MIGRATIONS, 1):
            if version <= current:
                continue
            con.execute("BEGIN")
            con.execute(ddl)
            con.execute("INSERT INTO schema_version VALUES (?, now())", [version])
            con.execute("COMMIT")
        self._caches.check(con)
        return len(schema.MIGRATIONS)

    # -- writes (from the writer thread, or the CLI when no server runs) -------------------
    def append(self, rows: InferenceRows, meta: MetadataRows, devices: DeviceRows | None = None) -> int:
        """Commits rows, metadata and device facts in one transaction; returns how many
        inferences were new.

        Tries the plain INSERT first (new inferences, the common case, at about twice the speed)
        and, if an identity is already stored or repeated in the batch, rolls back and commits
        with the deduplicating INSERT OR IGNORE instead.
        """
        batch = rows.to_arrow() if len(rows) else None  # read by name in the SQL below
        meta_batch = meta.to_arrow() if len(meta) else None  # likewise
        device_batch = devices.to_arrow() if devices else None  # likewise
        con = self._cursor()
        inserts: tuple[str, ...] = (schema.INSERT_NEW_INFERENCES, schema.INSERT_INFERENCES)
        with self._write_lock:
            if batch is not None and meta_batch is None and device_batch is None:
                # One statement is a transaction of its own: no BEGIN and COMMIT round trips,
                # each of which waits for the GIL again under load. A failed one leaves nothing.
                try:
                    con.execute(schema.INSERT_NEW_INFERENCES)
                except duckdb.ConstraintException:
                    inserts = (schema.INSERT_INFERENCES,)
                else:
                    self._caches.touched(batch)
                    return len(rows)
            for insert in inserts:
                try:
                    with transaction(con):
                        new = 0
                        if batch is not None:
                            result = con.execute(insert).fetchone()
                            new = int(result[0]) if result else 0
                        if len(meta):
                            con.execute(schema.UPSERT_METADATA)
                            con.execute(schema.NOTE_METADATA_CHANGED)
                        if device_batch is not None:
                            con.execute(schema.UPSERT_DEVICES)
                            con.execute(schema.UPDATE_DEVICE_TAGS)
                except duckdb.ConstraintException:
                    if insert is schema.INSERT_INFERENCES:
                        raise
                    continue
                if batch is not None and new:
                    self._caches.touched(batch)
                return new
        raise AssertionError("unreachable")

    def workspaces(self) -> list[WorkspaceRecord]:
        rows = self._cursor().execute(
            "SELECT id, slug, key_hash, created_at FROM workspaces ORDER BY id"
        ).fetchall()
        return [WorkspaceRecord(*row) for row in rows]

    def create_workspace(self, slug: str, key_hash: str) -> WorkspaceRecord:
        con = self._cursor()
        with self._write_lock:
            row = con.execute(
                "INSERT INTO workspaces SELECT coalesce(max(id), 0) + 1, ?, ?, now() FROM workspaces"
                " RETURNING id, slug, key_hash, created_at",
                [slug, key_hash],
            ).fetchone()
        assert row is not None
        return WorkspaceRecord(*row)

    def set_key_hash(self, slug: str, key_hash: str) -> WorkspaceRecord:
        con = self._cursor()
        with self._write_lock:
            row = con.execute(
                "UPDATE workspaces SET key_hash = ? WHERE slug = ? RETURNING id, slug, key_hash, created_at",
                [key_hash, slug],
            ).fetchone()
        if row is None:
            raise KeyError(slug)
        return WorkspaceRecord(*row)

    # -- reads ----------------------------------------------------------------------------
    def list_inferences(
        self, ws: int, filters: Filters, after: Cursor | None, limit: int
    ) -> tuple[list[base.InferenceRow], Cursor | None]:
        con = self._cursor()
        # Metadata terms select through the copies where they serve (`cache/meta_filter.py`):
        # bounded by each window's time like the inferences, so a page reads the window's
        # copies of the field, where the metadata itself, which knows no time, was read whole.
        on_copies = bool(filters.meta) and self._caches.copies_serve(filters)
        rest = dataclasses.replace(filters, meta=()) if on_copies else filters

        def fetch(lowest: datetime | None) -> list[tuple[Any, ...]]:
            # Newest first, in widening windows (store/paging.py).
            p = Params()
            clause = where(ws, rest, p) + ("" if after is None else " AND " + below(
                p.add(answer.EPOCH + timedelta(microseconds=after.ts_us)), p.add(after.inference_id),
                p.add(after.image_index)))
            if lowest is not None:
                clause += f" AND ts >= {p.add(lowest)}"
            if on_copies:
                window = filters if lowest is None else dataclasses.replace(filters, start=lowest)
                self._caches.ready_copies(con, ws, window)
                for term in filters.meta:
                    clause += f" AND key IN ({meta_filter.copy_keys(ws, term, window, p)})"
            return con.execute(f"SELECT {LIST_COLUMNS} FROM inferences WHERE {clause}"
                               f" ORDER BY ts DESC, inference_id DESC, image_index DESC LIMIT {p.add(limit + 1)}",
                               p).fetchall()

        def newest() -> datetime | None:
            found = con.execute("SELECT max(ts) FROM inferences WHERE ws = ?", [ws]).fetchone()
            return found[0] if found else None

        found, following = page(filters, after, limit, newest, fetch)
        return [answer.inference(row) for row in found], following

    def get_inference(self, ws: int, inference_id: str) -> list[base.InferenceRow]:
        """Every image of the id. Images 0 to _PROBED_IMAGES - 1 are looked up through the primary
        key (their identity keys are known), which takes a millisecond where reading every id of a
        5-million-row table took hundreds; only an id with none of those, or with all of them
        (there may be more), is looked for by scanning, on id_key and then the id itself."""
        con = self._cursor()
        identities = [f"{ws}\x01{inference_id}\x01{n}" for n in range(_PROBED_IMAGES)]
        # Only the key in the WHERE clause: another term there makes DuckDB scan instead of
        # using the index. The key holds the workspace and the id; the id is checked here anyway.
        found = [row for row in con.execute(
            f"SELECT {LIST_COLUMNS} FROM inferences WHERE key IN ({', '.join(['md5_number(?)'] * _PROBED_IMAGES)})"
            " ORDER BY image_index",
            identities,
        ).fetchall() if row[0] == inference_id]
        if not found or found[-1][1] == _PROBED_IMAGES - 1:
            found = con.execute(
                f"SELECT {LIST_COLUMNS} FROM inferences WHERE ws = ? AND id_key = md5_number(?)"
                " AND inference_id = ? ORDER BY image_index",
                [ws, inference_id, inference_id],
            ).fetchall()
        return [answer.inference(row) for row in found]

    def metadata_of(self, ws: int, inference_ids: list[str]) -> dict[str, dict[str, MetaScalar]]:
        if not inference_ids:
            return {}
        wanted = set(inference_ids)
        rows = self._cursor().execute(schema.METADATA_OF, [ws, list(wanted)]).fetchall()
        return answer.metadata_of([row for row in rows if row[0] in wanted])

    def _summed_inferences(self, ws: int, filters: Filters, hours: tuple[datetime, datetime] | None,
                           p: Params) -> str:
        """A subquery of the filters' inferences as (hour, model_id, device_id, task, n, n_predictions,
        confidence_sum, n_timed, time_sum, last_ts): the per-hour sums of the window's whole hours, and
        one row per inference of its partial first and last hours (`cache/sums.py`); with no
        summed `hours`, one row per inference."""
        if hours is None:
            return f"({_ROWS_AS_SUMS} WHERE {where(ws, filters, p, 'i')})"
        self._caches.ready(self._cursor(), ws, *hours)
        return ("(SELECT hour, model_id, device_id, task, n, n_predictions, confidence_sum, n_timed, time_sum, last_ts"
                f" FROM inference_hours WHERE {sums_where(ws, filters, hours, p)}"
                f" UNION ALL {_ROWS_AS_SUMS} WHERE {edge_where(ws, filters, hours, p)})")

    def _rows(self, con: duckdb.DuckDBPyConnection, ws: int, filters: Filters, p: Params) -> str:
        """`<table> i WHERE <terms>`: the filters' inferences with their summary columns (no
        predictions). With a metadata value among the filters, and the copies serving them,
        the copies of that value (`cache/meta_filter.py`); else the inferences."""
        found = meta_filter.copies_term(filters) if self._caches.copies_serve(filters) else None
        if found is None:
            return f"inferences i WHERE {where(ws, filters, p, 'i')}"
        self._caches.ready_copies(con, ws, filters)
        return f"metadata_facts i WHERE {meta_filter.copies_where(ws, *found, p, 'i')}"

    def totals_and_series(self, ws: int, filters: Filters, bucket: timedelta, group_by: str | None
                          ) -> tuple[base.Totals, list[base.SeriesPoint]]:
        # Each from its own per-hour sums or copies, which a window of any filter has.
        return self.totals(ws, filters), self.series(ws, filters, bucket, group_by)

    def totals(self, ws: int, filters: Filters) -> base.Totals:
        p = Params()
        con = self._cursor()
        hours = None if filters.classes else self._caches.summed_hours(filters)
        by_value = meta_filter.summed_term(self._caches, filters)
        row: tuple[Any, ...] | None
        if by_value is not None:
            self._caches.ready_copies(con, ws, filters)
            row = meta_filter.summed_totals(con, ws, *by_value)
        elif hours is None:
            row = con.execute(
                # Both percentiles from one sort: two quantile_cont calls sort the times twice.
                "SELECT count(*), coalesce(sum(n_predictions), 0), avg(inference_time),"
                " quantile_cont(inference_time, [0.5, 0.95]),"
                " sum(sum_confidence) / nullif(sum(n_predictions), 0),"
                " count(DISTINCT device_id), count(DISTINCT model_id)"
                f" FROM {self._rows(con, ws, filters, p)}", p).fetchone()
        else:
            # Counts and sums from the sums; the percentiles from the bucketed times
            # (`store/sketch.py`: within its ALPHA of the exact ones).
            row = con.execute(
                "SELECT coalesce(sum(n), 0), coalesce(sum(n_predictions), 0), sum(time_sum) / nullif(sum(n_timed), 0),"
                " NULL, sum(confidence_sum) / nullif(sum(n_predictions), 0), count(DISTINCT device_id),"
                f" count(DISTINCT model_id) FROM {self._summed_inferences(ws, filters, hours, p)}", p).fetchone()
            p = Params()
            buckets = [(k, int(n)) for _, k, n in con.execute(time_buckets(ws, filters, hours, p), p).fetchall()]
            assert row is not None
            row = (*row[:3], [sketch.quantile(buckets, 0.5), sketch.quantile(buckets, 0.95)], *row[4:])
        assert row is not None
        n, predictions, avg_time, percentiles, confidence, devices, models = row
        p50, p95 = percentiles if percentiles is not None else (None, None)
        return base.Totals(n, predictions, avg_time, p50, p95, confidence, devices, models)

    def series(
        self, ws: int, filters: Filters, bucket: timedelta, group_by: str | None
    ) -> list[base.SeriesPoint]:
        hours = self._caches.summed_hours(filters, bucket)
        p = Params()
        summed = hours is not None and group_by in (None, "model_id", "device_id") and not filters.classes
        t = f"time_bucket({p.add(bucket)}, {'hour' if summed else 'ts'}) AS t"
        plain_groups = group_by in (None, "model_id", "device_id")
        by_value = meta_filter.summed_term(self._caches, filters, bucket) if plain_groups else None
        if by_value is not None:
            con = self._cursor()
            self._caches.ready_copies(con, ws, filters)
            return answer.records(base.SeriesPoint, meta_filter.summed_series(con, ws, *by_value, bucket, group_by))
        if summed:
            sql = (f"SELECT {t}, {group_by or 'NULL'} AS g, sum(n) AS count,"
                   " coalesce(sum(n_predictions), 0) AS predictions,"
                   " sum(time_sum) / nullif(sum(n_timed), 0) AS avg_inference_time,"
                   " sum(confidence_sum) / nullif(sum(n_predictions), 0) AS avg_confidence"
                   f" FROM {self._summed_inferences(ws, filters, hours, p)} GROUP BY ALL ORDER BY 1, 2 NULLS LAST")
        elif group_by in (None, "model_id", "device_id"):
            sql = (f"SELECT {t}, {group_by or 'NULL'} AS g, {_FIGURES}"
                   f" FROM {self._rows(self._cursor(), ws, filters, p)} GROUP BY ALL ORDER BY 1, 2 NULLS LAST")
        elif group_by == "class":
            # Counted per prediction: detections of each class (a classifier's verdicts).
            if hours is not None:
                return self._class_series_summed(ws, filters, bucket, hours)
            clause = where(ws, filters, p, "i")
            outer = " WHERE " + prediction_terms(filters, p) if filters.on_predictions else ""
            sql = (f"SELECT {t}, p.class AS g, count(*) AS count,"
                   " count(*) AS predictions, avg(inference_time) AS avg_inference_time,"
                   " avg(p.confidence) AS avg_confidence FROM ("
                   f"SELECT ts, inference_time, unnest(predictions) AS p FROM inferences i WHERE {clause}"
                   f"){outer} GROUP BY ALL ORDER BY 1, 2")
        else:
            # By a metadata field: from the copies beside the metadata (`cache/meta_groups.py`)
            # where they serve, else in one pass joining the field.
            field = group_by.removeprefix("meta.")
            con = self._cursor()
            copies = self._caches.copies_serve(filters)
            return answer.records(base.SeriesPoint, meta_series(self, con, ws, filters, field, bucket) if copies
                                  else joined_meta_series(con, ws, filters, field, bucket))
        return answer.records(base.SeriesPoint, self._cursor().execute(sql, p).fetchall())

    def _class_series_summed(self, ws: int, filters: Filters, bucket: timedelta,
                             hours: tuple[datetime, datetime]) -> list[base.SeriesPoint]:
        """The class series from the per-hour sums of the window's whole hours, plus the
        predictions of its partial first and last hours (`cache/sums.py`)."""
        con = self._cursor()
        self._caches.ready(con, ws, *hours)
        p = Params()
        sql = (f"SELECT time_bucket({p.add(bucket)}, hour), class, sum(n), sum(time_sum) / nullif(sum(n_timed), 0),"
               " sum(confidence_sum) / nullif(sum(n_confidence), 0) FROM (SELECT hour, class, n, n_timed, time_sum,"
               f" n_confidence, confidence_sum FROM class_hours WHERE {sums_where(ws, filters, hours, p)}"
               " UNION ALL SELECT ts, p.class, 1, (inference_time IS NOT NULL)::BIGINT, coalesce(inference_time, 0),"
               " (p.confidence IS NOT NULL)::BIGINT, coalesce(p.confidence, 0) FROM (SELECT ts, inference_time,"
               f" unnest(predictions) AS p FROM inferences i WHERE {edge_where(ws, filters, hours, p)})")
        if filters.on_predictions:
            sql += " WHERE " + prediction_terms(filters, p)
        found = con.execute(sql + ") GROUP BY ALL ORDER BY 1, 2", p).fetchall()
        return answer.records(base.SeriesPoint, [(t, g, n, n, it, c) for t, g, n, it, c in found])

    def class_stats(self, ws: int, start: datetime, end: datetime, model_ids: tuple[str, ...]) -> base.ClassStats:
        """Figures of [start, end): totals, inferences per model, and per model x predicted class.

        Passes that each read only what they need: per-model sums (the totals follow from them),
        the predictions (the only pass that unnests them), the inferences per class from the
        short `classes` column, and the server versions, parsed from `extra` only on the rows
        that carry one (parsing JSON for every prediction was most of this call's time).
        """
        filters = Filters(start=start, end=end, model_ids=model_ids)
        hours = self._caches.summed_hours(filters)
        if hours is not None:
            return self._class_stats_summed(ws, filters, hours)
        params = Params()
        clause = where(ws, filters, params)
        con = self._cursor()
        per_model = con.execute(
            "SELECT model_id, count(*), sum(sum_confidence), sum(n_predictions), sum(inference_time),"
            f" count(inference_time) FROM inferences WHERE {clause} GROUP BY model_id", params).fetchall()
        predictions = con.execute(
            "SELECT model_id, p.class, count(*), avg(p.confidence), median(p.confidence), avg(inference_time)"
            f" FROM (SELECT model_id, inference_time, unnest(predictions) AS p FROM inferences WHERE {clause})"
            " GROUP BY ALL", params).fetchall()
        per_class = con.execute(
            "SELECT model_id, c, count(*) FROM (SELECT model_id, unnest(classes) AS c"
            f" FROM inferences WHERE {clause}) GROUP BY ALL", params).fetchall()
        params = Params()
        versions = dict(con.execute(sums.versions(ws, filters, None, params), params).fetchall())
        return answer.class_stats(per_model, predictions,
                                  {(m, c): (k, versions.get((m, c), [])) for m, c, k in per_class})

    def _class_stats_summed(self, ws: int, filters: Filters, hours: tuple[datetime, datetime]) -> base.ClassStats:
        """`class_stats` from the per-hour sums of the window's whole hours and the rows of its
        partial first and last hours (`cache/sums.py`): counts and sums exact, the median
        confidence from the 1000 confidence bins (within `sketch.CONFIDENCE_ERROR`). Only the
        server versions read the rows, those few that carry one."""
        con = self._cursor()
        p = Params()
        per_model = con.execute(
            "SELECT model_id, sum(n), sum(confidence_sum), sum(n_predictions), sum(time_sum), sum(n_timed)"
            f" FROM {self._summed_inferences(ws, filters, hours, p)} GROUP BY model_id", p).fetchall()
        p = Params()
        figures = con.execute(
            "SELECT model_id, class, sum(n), sum(confidence_sum) / nullif(sum(n_confidence), 0),"
            " sum(time_sum) / nullif(sum(n_timed), 0) FROM (SELECT model_id, class, n, n_confidence, confidence_sum,"
            f" n_timed, time_sum FROM class_hours WHERE {sums_where(ws, filters, hours, p)}"
            " UNION ALL SELECT model_id, p.class, 1, (p.confidence IS NOT NULL)::BIGINT, coalesce(p.confidence, 0),"
            " (inference_time IS NOT NULL)::BIGINT, coalesce(inference_time, 0) FROM (SELECT model_id, inference_time,"
            f" unnest(predictions) AS p FROM inferences i WHERE {edge_where(ws, filters, hours, p)})) GROUP BY ALL",
            p).fetchall()
        p = Params()
        bins: dict[tuple[str, str | None], list[tuple[int, int]]] = {}
        for m, c, b, n in con.execute(confidence_bins(ws, filters, hours, p), p).fetchall():
            bins.setdefault((m, c), []).append((b, int(n)))
        predictions = [(m, c, int(k), ac, sketch.confidence_quantile(bins.get((m, c), []), 0.5), rt)
                       for m, c, k, ac, rt in figures]
        p = Params()
        per_class = con.execute(rows_per_class(ws, filters, hours, p, by="model_id"), p).fetchall()
        p = Params()
        versions = dict(con.execute(sums.versions(ws, filters, hours, p), p).fetchall())
        return answer.class_stats(per_model, predictions,
                                  {(m, c): (int(k), versions.get((m, c), [])) for m, c, k in per_class})

    def devices(self, ws: int, start: datetime, end: datetime) -> list[base.Device]:
        """Every device the workspace heard of: reported by a server, or named by an inference.
        With the caches, what the inferences say of each device (first and last receipt, latest
        inference) comes from the per-hour sums of every hour, and the period's count from those
        of its whole hours and the rows of its partial ones: no read of every row stored."""
        con = self._cursor()
        p = Params()
        if self._caches.on:
            self._caches.ready(con, ws, datetime.min, datetime.max)
            window = Filters(start=start, end=end)
            seen = (
                "SELECT device_id, max(last_ts) AS last_ts, max(last_received) AS last_received,"
                " min(first_received) AS first_received, coalesce(any_value(w.n), 0) AS n"
                f" FROM inference_hours h LEFT JOIN (SELECT device_id, sum(n) AS n FROM"
                f" {self._summed_inferences(ws, window, self._caches.summed_hours(window), p)} GROUP BY 1) w"
                f" USING (device_id) WHERE h.ws = {p.add(ws)} AND device_id IS NOT NULL GROUP BY device_id")
        else:
            seen = (
                "SELECT device_id, max(ts) AS last_ts, max(received_at) AS last_received,"
                f" min(received_at) AS first_received, count(*) FILTER (WHERE ts >= {p.add(start.replace(tzinfo=None))}"
                f" AND ts < {p.add(end.replace(tzinfo=None))}) AS n"
                f" FROM inferences WHERE ws = {p.add(ws)} AND device_id IS NOT NULL GROUP BY device_id")
        return answer.records(base.Device, con.execute(
            f"WITH seen AS ({seen})"
            " SELECT coalesce(d.device_id, s.device_id), coalesce(d.first_seen, s.first_received),"
            "  greatest(d.last_seen, s.last_received), s.last_ts, d.server_id, d.server_version, d.hostname,"
            "  d.platform, coalesce(d.tags, []::VARCHAR[]), coalesce(s.n, 0)"
            f" FROM (SELECT * FROM devices WHERE ws = {p.add(ws)}) d FULL OUTER JOIN seen s"
            " ON s.device_id = d.device_id ORDER BY 1", p).fetchall())

    def metadata_fields(self, ws: int, top: int) -> list[base.MetadataField]:
        # The rows counted per field, value and kind (`cache/meta_counts.py`), then each value's
        # kinds gathered from those counts: a list of distinct kinds kept per value for every
        # row took 1.6 times as long. One pass serves both the per-field figures and the top values.
        con = self._cursor()
        p = Params()
        with self._counts.counted(con) as per_value:
            rows = con.execute(
                "WITH v AS MATERIALIZED (SELECT field_name, field_value, list(field_type) AS kinds,"
                f"  sum(n)::BIGINT AS n FROM {per_value(ws, p)} GROUP BY ALL),"
                " top AS (SELECT field_name, field_value, n FROM v"
                f"  QUALIFY row_number() OVER (PARTITION BY field_name ORDER BY n DESC, field_value) <= {p.add(top)})"
                " SELECT f.*, coalesce(t.values, []) FROM (SELECT field_name, count(*), sum(n),"
                "  list_distinct(flatten(list(kinds))) FROM v GROUP BY field_name) AS f"
                " LEFT JOIN (SELECT field_name, list((field_value, n) ORDER BY n DESC, field_value) AS values"
                "  FROM top GROUP BY field_name) AS t USING (field_name) ORDER BY field_name",
                p).fetchall()
        return answer.metadata_fields([row[:4] for row in rows],
                                      [(row[0], *pair) for row in rows for pair in row[4]])

    # -- images ---------------------------------------------------------------------------
    def insert_image(self, image: ImageRecord) -> bool:
        con = self._cursor()
        values = astuple(image)  # in IMAGE_COLUMNS' order, which is made from ImageRecord's
        try:
            with self._write_lock, transaction(con):
                row = con.execute(
                    f"INSERT OR IGNORE INTO images ({IMAGE_COLUMNS}) VALUES ({', '.join('?' * len(values))})",
                    list(values)).fetchone()
                new = bool(row and row[0])
                if not new and image.inference_id is not None:
                    con.execute(
                        "UPDATE images SET inference_id = ? WHERE ws = ? AND sha256 = ? AND inference_id IS NULL",
                        [image.inference_id, image.ws, image.sha256],
                    )
        finally:  # after the commit: a read begun before it keeps nothing
            self._images.changed((image.ws, image.sha256))
        return new

    def image(self, ws: int, sha256: str) -> ImageRecord | None:
        cached = self._images.get(ws, sha256)
        if cached is not None:
            return cached
        seen = self._images.generation
        row = self._cursor().execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE ws = ? AND sha256 = ?", [ws, sha256]
        ).fetchone()
        if row is None:
            return None
        record = ImageRecord(*row)
        self._images.keep(seen, record)
        return record

    def image_of_inference(self, ws: int, inference_id: str) -> ImageRecord | None:
        row = self._cursor().execute(
            f"SELECT {IMAGE_COLUMNS} FROM images WHERE ws = ? AND inference_id = ?"
            " ORDER BY uploaded_at DESC, sha256 LIMIT 1",
            [ws, inference_id],
        ).fetchone()
        return None if row is None else ImageRecord(*row)
