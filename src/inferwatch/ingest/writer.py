"""The single writer: every accepted row reaches the store through one thread, in commit groups.

Requests put their decoded rows on a bounded queue and wait; the writer takes everything that
is waiting and appends it in one transaction, so a commit's fixed cost (a few ms in DuckDB) is
shared by all the requests that arrived meanwhile. A request is answered only once its rows are
committed. When the queue holds more rows than allowed, new requests are refused with 503
instead of growing memory without bound.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, TypeVar

from inferwatch import metrics
from inferwatch.errors import Overloaded
from inferwatch.ingest.rows import DeviceRows, InferenceRows, MetadataRows
from inferwatch.model_metrics import ModelSeries
from inferwatch.store.base import Store

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(slots=True)
class _Append:
    rows: InferenceRows
    meta: MetadataRows
    size: int
    done: Future[int]
    devices: DeviceRows | None = None


@dataclass(slots=True)
class _Call:
    fn: Callable[[Store], Any]
    done: Future[Any]


class Writer:
    def __init__(self, store: Store, max_rows: int, series: ModelSeries | None = None) -> None:
        self._store = store
        self._max_rows = max_rows
        # The per-model Prometheus series count what is committed, here, so no scrape reads the store.
        self._series = series
        self._cond = threading.Condition()
        self._queue: list[_Append | _Call] = []
        self._queued_rows = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="inferwatch-writer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Commits everything already accepted, then stops."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    async def append(self, rows: InferenceRows, meta: MetadataRows, devices: DeviceRows | None = None) -> int:
        """Returns once the rows are committed: the number of inferences that were new."""
        return await asyncio.wrap_future(self.submit(rows, meta, devices))

    def submit(self, rows: InferenceRows, meta: MetadataRows, devices: DeviceRows | None = None) -> Future[int]:
        size = len(rows) + len(meta) + (len(devices) if devices else 0)
        done: Future[int] = Future()
        with self._cond:
            if self._closed:
                raise Overloaded("the server is shutting down", retry_after_s=5)
            # One request larger than the whole queue is still let in when the queue is empty.
            if self._queued_rows and self._queued_rows + size > self._max_rows:
                metrics.REJECTED.inc()
                raise Overloaded("ingest queue is full, retry shortly")
            self._queue.append(_Append(rows, meta, size, done, devices))
            self._queued_rows += size
            metrics.QUEUE_ROWS.set(self._queued_rows)
            self._cond.notify()
        return done

    def call(self, fn: Callable[[Store], T]) -> T:
        """Runs a write other than an append (workspace changes) in queue order, and waits."""
        done: Future[T] = Future()
        with self._cond:
            if self._closed:
                raise Overloaded("the server is shutting down", retry_after_s=5)
            self._queue.append(_Call(fn, done))
            self._cond.notify()
        return done.result()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                ops, self._queue = self._queue, []
            group: list[_Append] = []
            for op in ops:
                if isinstance(op, _Call):
                    self._commit(group)
                    group = []
                    _settle(op.done, op.fn, self._store)
                else:
                    group.append(op)
            self._commit(group)

    def _commit(self, group: list[_Append]) -> None:
        if not group:
            return
        if len(group) == 1:
            rows, meta, devices = group[0].rows, group[0].meta, group[0].devices
        else:
            rows, meta, devices = InferenceRows(), MetadataRows(), DeviceRows()
            for op in group:
                rows.extend(op.rows)
                meta.extend(op.meta)
                if op.devices:
                    devices.extend(op.devices)
        started = time.perf_counter()
        try:
            new = self._store.append(rows, meta, devices or None)
        except Exception:
            if len(group) == 1:
                log.exception("commit failed")
                self._finish(group, error=True)
                return
            # One bad request must not fail the others: commit each on its own.
            log.warning("group commit failed; committing its %d requests one by one", len(group))
            for op in group:
                self._commit([op])
            return
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.INGESTED_ROWS.inc(len(rows))
        metrics.METADATA_ROWS.inc(len(meta))
        if self._series is not None and new:
            try:
                self._series.observe(rows)
            except Exception:  # a figure for dashboards must never fail a commit already made
                log.exception("could not count committed rows for the model series")
        self._finish(group, error=False)

    def _finish(self, group: list[_Append], error: bool) -> None:
        with self._cond:
            self._queued_rows -= sum(op.size for op in group)
            metrics.QUEUE_ROWS.set(self._queued_rows)
        for op in group:
            if error:
                op.done.set_exception(RuntimeError("the store refused this batch"))
            else:
                op.done.set_result(len(op.rows))


def _settle(done: Future[Any], fn: Callable[[Store], Any], store: Store) -> None:
    try:
        done.set_result(fn(store))
    except Exception as exc:
        done.set_exception(exc)
