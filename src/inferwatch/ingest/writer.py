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

Below the data volume's free-space floor every write is refused with 507 before it is queued
(`diskspace.py`). If a commit fails in the storage anyway (a disk that filled faster than the floor
was looked at, an I/O error), its requests get 507 or 503, never an acknowledgement; the writer
then refuses writes, waits (with backoff) until a small file can be written on the volume again,
reopens the store (DuckDB may invalidate its database after a failed write) and carries on: ingest
resumes without a restart.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from inferwatch import metrics
from inferwatch.diskspace import DiskGuard, Space
from inferwatch.errors import InsufficientStorage, Overloaded, RetryLater, StoreUnavailable
from inferwatch.ingest.rows import DeviceRows, InferenceRows, MetadataRows
from inferwatch.model_metrics import ModelSeries
from inferwatch.store.base import Store

log = logging.getLogger(__name__)
T = TypeVar("T")
# Waits between two probes of a store that failed: from the first to the last, doubling.
_FIRST_PROBE_S = 0.1
_LAST_PROBE_S = 2.0
# How the engines say the disk is full: the system's message (DuckDB), ClickHouse's error name.
_NO_SPACE = ("No space left on device", "Disk quota exceeded", "NOT_ENOUGH_SPACE")
# The longest a merged write queued under load waits for more (`Writer._linger`), and how many
# items (events) queued are enough to write without waiting longer: a merged write's commit and
# each of its statements cost DuckDB about the same for 100 events as for 1,600, so writing the
# requests that arrive together in one commit instead of one by one divides those costs.
LINGER_S = 0.05
LINGER_ITEMS = 2000


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


@dataclass(slots=True)
class _Merge:
    """A write that shares one `run` with the like writes queued beside it (`Writer.call_merged`)."""

    part: Any
    run: Callable[[Store, list[Any]], list[Any]]
    done: Future[Any]
    size: int = 0  # its items (events): how many the writer's wait counts


class Ticket:
    """A merged write being prepared (`Writer.preparing`): counted until it is queued or given up."""

    __slots__ = ("_writer", "open")

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self.open = True

    def close(self) -> None:
        """Called with the writer's lock held."""
        if self.open:
            self.open = False
            self._writer._preparing -= 1


class Writer:
    def __init__(self, store: Store, max_rows: int, commit_timeout_s: float, series: ModelSeries | None = None,
                 disk: DiskGuard | None = None, linger_s: float = LINGER_S, linger_items: int = LINGER_ITEMS) -> None:
        self._store = store
        self._linger_s = linger_s
        self._linger_items = linger_items
        # Merged writes being prepared (decoded and checked on the event loop), which queued ones
        # wait for (`preparing`).
        self._preparing = 0
        self._max_rows = max_rows
        self._commit_timeout_s = commit_timeout_s
        # The per-model Prometheus series count what is committed, here, so no scrape reads the store.
        self._series = series
        self.disk = disk
        # While the store is being reopened after a failed write: what every write is answered.
        self._failure: RetryLater | None = None
        # The first wait before probing a failed store: doubled by each failure in a row (a store
        # that reopens but fails again), back to the first after a commit that works.
        self._backoff = _FIRST_PROBE_S
        # Whether the store was told the writer has ingest work in hand (`Store.ingesting`).
        self._ingesting = False
        self._cond = threading.Condition()
        self._queue: list[_Append | _Call | _Merge] = []
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

    def problem(self) -> str | None:
        """Why writes are refused now (the store is being reopened after a failure, or the data
        volume is below its free-space floor), None while they are taken."""
        failure = self._failure
        if failure is not None:
            return str(failure.detail)
        if self.disk is not None and (space := self.disk.space()).low:
            return space.describe()
        return None

    def refuse(self, fresh: bool = False) -> None:
        """Raises what a write gets now, if it is refused: 503/507 while the store is reopened
        after a failure, 507 below the free-space floor (`fresh`: looked at now, for a write as
        large as an image, rather than within the last second)."""
        failure = self._failure
        if failure is not None:
            raise failure.again()
        if self.disk is not None:
            if fresh:
                self.disk.refresh()
            self.disk.check()

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
        """The commit's answer. A request still queued at the commit timeout is withdrawn and
        refused; one the writer has taken is waited for, whatever the time (its commit decides).
        A caller that goes away leaves its rows to commit: the request's own future is settled
        from the writer's, never the other way round."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[int] = loop.create_future()
        op.done.add_done_callback(lambda done: loop.call_soon_threadsafe(_copy_outcome, done, answer))
        timer = loop.call_later(self._commit_timeout_s, self._withdraw, op)
        try:
            return await answer
        finally:
            timer.cancel()

    def _withdraw(self, op: _Append) -> None:
        with self._cond:
            if op not in self._queue:
                return  # taken by the writer
            self._queue.remove(op)
            self._queued_rows -= op.size
            metrics.QUEUE_ROWS.set(self._queued_rows)
        metrics.REJECTED.inc()
        op.done.set_exception(Overloaded(f"the store did not take the rows within {self._commit_timeout_s:g} s;"
                                         " nothing was written, retry shortly", retry_after_s=5))

    def _enqueue(self, op: _Append) -> _Append:
        self.refuse()
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
        """Runs a write other than an append (workspace changes) in queue order, and waits;
        refused like an append below the free-space floor."""
        self.refuse()
        return self.maintain(fn)

    def call_merged(self, part: Any, run: Callable[[Store, list[Any]], list[Any]]) -> Any:
        """`call` for writes that may share a commit: the parts of the calls with the same `run`
        queued one after another are written by one `run(store, parts)`, which returns each
        part's answer in order, as appends share a group commit. If that run fails for anything
        but the storage, each part is run alone, so one bad part never fails the others."""
        self.refuse()
        done: Future[Any] = Future()
        with self._cond:
            if self._closed:
                raise Overloaded("the server is shutting down", retry_after_s=5)
            self._queue.append(_Merge(part, run, done))
            self._cond.notify()
        return done.result()

    @contextmanager
    def preparing(self) -> Iterator[Ticket]:
        """Marks a merged write being prepared, from the request's start to `merged` queueing it
        (or its refusal). While any is, merged writes already queued wait for it, at most
        `linger_s`: the requests that arrive together are written in one commit, where the writer
        would otherwise take each as it comes and pay a commit and its statements for each. A
        lone request waits for nothing."""
        ticket = Ticket(self)
        with self._cond:
            self._preparing += 1
        try:
            yield ticket
        finally:
            with self._cond:
                ticket.close()
                self._cond.notify()

    async def merged(self, part: Any, run: Callable[[Store, list[Any]], list[Any]], size: int,
                     ticket: Ticket | None = None) -> Any:
        """`call_merged` from the event loop: queued at once (closing `ticket` in the same step,
        so the writer never stops waiting between the two), then awaited without a thread."""
        self.refuse()
        done: Future[Any] = Future()
        # Running: a request that goes away cannot cancel it (the writer settles it, whatever
        # happens to the request, as its rows may be in the commit under way).
        done.set_running_or_notify_cancel()
        with self._cond:
            if self._closed:
                raise Overloaded("the server is shutting down", retry_after_s=5)
            self._queue.append(_Merge(part, run, done, size))
            if ticket is not None:
                ticket.close()
            self._cond.notify()
        return await asyncio.wrap_future(done)

    def _linger(self) -> None:
        """With the lock held and only merged writes queued: waits for more of them while others
        are being prepared (`preparing`), at most `linger_s` and until `linger_items` are queued.
        A write reaching an idle writer, or a lone client's, waits for nothing. (The writer also
        used to rest after each shared write for as long as it had taken, so as to gather more:
        decoding and writing then took turns, and without the rest 16 % more events/s go through
        at the same CPU an event, docs/performance.md.)"""
        now = time.monotonic()
        limit = now + self._linger_s
        while self._queue and not self._closed and now < limit and self._preparing:
            if not all(isinstance(op, _Merge) for op in self._queue):
                return  # anything else is written now, as it always was
            if sum(op.size for op in self._queue if isinstance(op, _Merge)) >= self._linger_items:
                return
            self._cond.wait(limit - now)
            now = time.monotonic()

    def maintain(self, fn: Callable[[Store], T]) -> T:
        """`call` for the server's own upkeep (retention sweeps, which free space; alert states;
        backups): run below the free-space floor too, which is the headroom kept for them."""
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
                # Woken by new work, and by a request no longer being prepared (queued or refused).
                while not self._queue and not self._closed and (self._preparing or not self._ingesting):
                    self._cond.wait()
                if not self._queue:
                    if self._closed:
                        return
                    ops = []  # idle: nothing queued, nothing being prepared
                else:
                    self._linger()
                    ops, self._queue = self._queue, []
            if not ops:
                self._ingest(False)
                continue
            # Upkeep and other calls alone (a retention sweep, a backup) keep the engine's threads.
            self._ingest(any(not isinstance(op, _Call) for op in ops))
            group: list[_Append] = []
            merged: list[_Merge] = []
            for op in ops:
                if isinstance(op, _Merge) and self._failure is None:
                    self._commit(group)
                    group = []
                    if merged and merged[0].run is not op.run:
                        self._settle_merged(merged)
                        merged = []
                    merged.append(op)
                    continue
                self._settle_merged(merged)
                merged = []
                if self._failure is not None or isinstance(op, _Merge):  # accepted before the store failed
                    self._refuse_queued(op, self._failure or StoreUnavailable("the store failed to write"))
                elif isinstance(op, _Call):
                    self._commit(group)
                    group = []
                    self._settle(op)
                elif op.counted:
                    self._commit(group)
                    self._commit([op])
                    group = []
                else:
                    group.append(op)
            self._settle_merged(merged)
            self._commit(group)
            if self._failure is not None:
                self._recover()

    def _ingest(self, busy: bool) -> None:
        """Tells the store when the writer starts or stops having ingest work (`Store.ingesting`);
        a hint that fails (a store that failed and waits to be reopened) stops nothing."""
        if busy == self._ingesting:
            return
        self._ingesting = busy
        try:
            self._store.ingesting(busy)
        except Exception as exc:
            log.warning("could not tell the store the writer is %s: %s", "busy" if busy else "idle", exc)

    def _settle_merged(self, ops: list[_Merge]) -> None:
        if not ops:
            return
        if self._failure is not None:
            for op in ops:
                self._refuse_queued(op, self._failure)
            return
        try:
            answers = ops[0].run(self._store, [op.part for op in ops])
        except Exception as exc:
            failure = self._storage_failure(exc)
            if failure is not None:
                for op in ops:
                    op.done.set_exception(failure.again())
            elif len(ops) == 1:
                ops[0].done.set_exception(exc)
            else:
                log.warning("merged write failed; writing its %d parts one by one", len(ops))
                for op in ops:
                    self._settle_merged([op])
            return
        for op, answer in zip(ops, answers, strict=True):
            op.done.set_result(answer)

    def _refuse_queued(self, op: _Append | _Call | _Merge, failure: RetryLater) -> None:
        if isinstance(op, _Append):
            self._finish([op], failure.again())
        else:
            op.done.set_exception(failure.again())

    def _settle(self, op: _Call) -> None:
        try:
            op.done.set_result(op.fn(self._store))
        except Exception as exc:
            failure = self._storage_failure(exc)
            op.done.set_exception(exc if failure is None else failure.again())

    def _storage_failure(self, exc: Exception) -> RetryLater | None:
        """The answer for a write the storage failed (the disk is full, or an I/O error), after
        which the store is reopened; None for any other error (the data's, or a bug)."""
        if not self._store.storage_failed(exc):
            return None
        space = self.disk.refresh() if self.disk is not None else None
        failure: RetryLater
        if _no_space(exc) or (space is not None and space.low):
            failure = self._full(space)
        else:
            failure = StoreUnavailable(f"the store failed to write ({exc}); it is being reopened")
        if self._failure is None:
            log.error("the store failed to write; refusing writes until it is reopened: %s", exc)
        self._failure = failure
        return failure

    def _full(self, space: Space | None) -> InsufficientStorage:
        where = space.describe() if space is not None else "the data volume is full"
        return InsufficientStorage(f"the store could not write: {where}",
                                   retry_after_s=self.disk.retry_after_s if self.disk else None)

    def _recover(self) -> None:
        """Waits, with backoff, until the volume takes a small write again, then reopens the store."""
        wait = self._backoff
        while True:
            with self._cond:
                if self._closed:
                    return
                self._cond.wait(wait)
                stale, self._queue = [op for op in self._queue], []
            for op in stale:  # refused as a new write would be, not kept waiting
                assert self._failure is not None
                self._refuse_queued(op, self._failure)
            wait = min(wait * 2, _LAST_PROBE_S)
            if self.disk is not None and not self.disk.writable():
                # A volume that cannot take a small file is full, whatever the engine's error
                # said (chdb may first fail on a part that the filling disk left broken): 507.
                if not isinstance(self._failure, InsufficientStorage):
                    self._failure = self._full(self.disk.refresh())
                continue
            try:
                self._store.reopen()
            except Exception as exc:
                log.warning("the store could not be reopened yet: %s", exc)
                continue
            log.warning("the store was reopened; writes are taken again")
            self._failure = None
            self._backoff = wait
            return

    def _commit(self, group: list[_Append]) -> None:
        if not group:
            return
        if self.disk is not None and self.disk.refresh().low:
            # Requests are let in on a look at the volume up to a second old; the commit looks
            # again, so a burst of commits cannot eat the headroom the floor keeps for upkeep.
            for op in group:
                self._finish([op], self.disk.refused())
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
        except Exception as exc:
            failure = self._storage_failure(exc)
            if failure is not None:
                for op in group:
                    self._finish([op], failure.again())
                return
            if len(group) == 1:
                log.exception("commit failed")
                self._finish(group, RuntimeError("the store refused this batch"))
                return
            # One bad request must not fail the others: commit each on its own.
            log.warning("group commit failed; committing its %d requests one by one", len(group))
            for op in group:
                self._commit([op])
            return
        self._backoff = _FIRST_PROBE_S
        metrics.COMMIT_SECONDS.observe(time.perf_counter() - started)
        metrics.INGESTED_ROWS.inc(len(rows))
        metrics.METADATA_ROWS.inc(len(meta))
        if self._series is not None and new:
            try:
                self._series.observe(rows)
            except Exception:  # a figure for dashboards must never fail a commit already made
                log.exception("could not count committed rows for the model series")
        self._finish(group, None, new=new)

    def _finish(self, group: list[_Append], error: Exception | None, new: int = 0) -> None:
        with self._cond:
            self._queued_rows -= sum(op.size for op in group)
            metrics.QUEUE_ROWS.set(self._queued_rows)
        for op in group:
            if error is not None:
                op.done.set_exception(error)
            else:  # the store's count is the answer of a group of one (see `counted`)
                op.done.set_result(new if len(group) == 1 else len(op.rows))


def _copy_outcome(done: Future[int], answer: asyncio.Future[int]) -> None:
    if answer.cancelled():
        return
    if (error := done.exception()) is not None:
        answer.set_exception(error)
    else:
        answer.set_result(done.result())


def _no_space(exc: BaseException) -> bool:
    """Whether the error, or one it came from, is the operating system's "no space left"."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if any(text in str(seen) for text in _NO_SPACE):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
