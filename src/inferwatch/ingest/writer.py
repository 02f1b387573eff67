"""The single writer: every accepted row reaches the store through one thread, in commit groups.

Requests put their decoded rows on a bounded queue and wait; the writer takes everything that
is waiting and appends it in one transaction, so a commit's fixed cost (a few ms in DuckDB) is
shared by all the requests that arrived meanwhile. A request is answered only once its rows are
committed. When the queue holds more rows than allowed, new requests are refused with 503
instead of growing memory without bound.

A request whose rows the writer has not taken within `commit_timeout_s` is withdrawn from the
queue and answered 503 with Retry-After: nothing of it is written, so the client's retry is the
only copy. Rows the writer has taken are always waited for (one commit's time): answering an
error for rows that then commit anyway would make the answer a lie.
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


@dataclass(slots=True, eq=False)  # found in the queue by identity
class _Append:
    rows: InferenceRows
    meta: MetadataRows
    size: int
    done: Future[int]
    devices: DeviceRows | None = None
    # Answers how many inferences were new: committed in a group of its own, since a group's
    # count cannot be split between the requests whose duplicates it skipped.
    counted: bool = False


@dataclass(slots=True)
class _Call:
    fn: Callable[[Store], Any]
    done: Future[Any]


class Writer:
    def __init__(self, store: Store, max_rows: int, commit_timeout_s: float, series: ModelSeries | None = None
                 ) -> None:
        self._store = store
        self._max_rows = max_rows
        self._commit_timeout_s = commit_timeout_s
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

    async def append(self, rows: InferenceRows, meta: MetadataRows, devices: DeviceRows | None = None) -> None:
        """Returns once the rows are committed."""
        await self._wait(self._enqueue(_Append(rows, meta, 0, Future(), devices)))

    async def append_counted(self, rows: InferenceRows, devices: DeviceRows) -> int:
        """Returns once the rows are committed: the number of inferences that were new."""
        return await self._wait(self._enqueue(_Append(rows, MetadataRows(), 0, Future(), devices, counted=True)))

    def submit(self, rows: InferenceRows, meta: MetadataRows, devices: DeviceRows | None = None) -> Future[int]:
        """Queues the rows without waiting (the proxy's recorder): the future settles on commit."""
        return self._enqueue(_Append(rows, meta, 0, Future(), devices)).done

    async def _wait(self, op: _Append) -> int:
        done = asyncio.wrap_future(op.done)
        try:
            return await asyncio.wait_for(asyncio.shield(done), self._commit_timeout_s)
        except TimeoutError:
            with self._cond:
                waiting = op in self._queue
                if waiting:
                    self._queue.remove(op)
                    self._queued_rows -= op.size
                    metrics.QUEUE_ROWS.set(self._queued_rows)
            if waiting:
                op.done.cancel()
                metrics.REJECTED.inc()
                raise Overloaded(f"the store did not take the rows within {self._commit_timeout_s:g} s;"
                                 " nothing was written, retry shortly", retry_after_s=5) from None
            return await done  # taken by the writer: its commit decides

    def _enqueue(self, op: _Append) -> _Append:
        op.size = len(op.rows) + len(op.meta) + (len(op.devices) if op.devices else 0)
        with self._cond:
            if self._closed:
                raise Overloaded("the server is shutting down", retry_after_s=5)
            # One request larger than the whole queue is still let in when the queue is empty.
            if self._queued_rows and self._queued_rows + op.size > self._max_rows:
                metrics.REJECTED.inc()
                raise Overloaded("ingest queue is full, retry shortly")
            self._queue.append(op)
            self._queued_rows += op.size
            metrics.QUEUE_ROWS.set(self._queued_rows)
            self._cond.notify()
        return op

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
                elif op.counted:
                    self._commit(group)
                    self._commit([op])
                    group = []
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
        self._finish(group, error=False, new=new)

    def _finish(self, group: list[_Append], error: bool, new: int = 0) -> None:
        with self._cond:
            self._queued_rows -= sum(op.size for op in group)
            metrics.QUEUE_ROWS.set(self._queued_rows)
        for op in group:
            if error:
                op.done.set_exception(RuntimeError("the store refused this batch"))
            else:  # the store's count is the answer of a group of one (see `counted`)
                op.done.set_result(new if len(group) == 1 else len(op.rows))


def _settle(done: Future[Any], fn: Callable[[Store], Any], store: Store) -> None:
    try:
        done.set_result(fn(store))
    except Exception as exc:
        done.set_exception(exc)
