"""`Client`: log every inference to inferwatch from the code that runs the model, without ever
slowing it down or failing it.

`log` only encodes the item (a snapshot: the caller may reuse its dict) and appends it to an
in-memory queue. A background thread sends what waits as one gzipped NDJSON batch, when a batch
is full or a short linger has passed. A failed send (connection refused, timeout, 5xx, 503, 429)
is retried with backoff; meanwhile batches go to the on-disk spool, which also outlives the
process, so inferwatch being down, slow or restarted loses nothing. The server counts an
inference once however often it arrives, which makes every retry safe.

The other methods (metadata, queries, export) are plain calls that answer or raise
`InferwatchError`: they are made on purpose, not from the hot loop.
"""

from __future__ import annotations

import atexit
import gzip
import hashlib
import logging
import os
import random
import threading
import time
import uuid
import weakref
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
import numpy as np

from inferwatch.sdk import vision
from inferwatch.sdk.spool import Spool

log = logging.getLogger("inferwatch.sdk")

_encode = msgspec.json.Encoder().encode
_MAX_IDS_PER_CALL = 10_000


class InferwatchError(Exception):
    """An explicit call (metadata, query, export) that inferwatch refused or could not answer."""


@dataclass
class Counters:
    """What happened to logged items. `dropped` counts items lost for good: refused by the server
    as invalid, or pushed out of a full queue or spool."""

    logged: int = 0
    sent: int = 0
    retried: int = 0
    spilled: int = 0
    dropped: int = 0
    images_sent: int = 0
    images_dropped: int = 0


@dataclass(slots=True)
class _Deferred:
    """A `log` call whose result is made in the background thread: a supervision object's
    snapshot, and/or a frame to measure, encode and upload."""

    inference_id: str
    model_id: str
    item: dict[str, Any]  # everything of the ingest item but `result`
    result: dict[str, Any] | None  # a plain result, else made from `snap`
    snap: vision.Snapshot | None
    class_names: list[str] | None
    inference_time: float | None
    image: Any
    bgr: bool


class _Transient(Exception):
    """A send that may succeed later; `wait_s` is the server's Retry-After, if it gave one."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.wait_s = wait_s


def default_spool_dir(url: str, api_key: str) -> Path:
    """One folder per (server, key) under the user's cache dir, so a restarted process finds
    what its predecessor left."""
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    digest = hashlib.sha256(f"{url}\0{api_key}".encode()).hexdigest()[:16]
    return base / "inferwatch" / "spool" / digest


class Client:
    def __init__(
        self,
        url: str,
        api_key: str,
        workspace: str | None = None,
        *,
        spool_dir: str | Path | None = None,
        batch_size: int = 500,
        linger_s: float = 0.25,
        max_queue: int = 100_000,
        spool_max_bytes: int = 512 * 1024 * 1024,
        timeout_s: float = 10.0,
        max_backoff_s: float = 30.0,
        image_quality: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.api_key = api_key
        self._workspace = workspace
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.max_queue = max_queue
        self.max_backoff_s = max_backoff_s
        self.image_quality = image_quality
        self.counters = Counters()
        self.spool = Spool(Path(spool_dir) if spool_dir else default_spool_dir(self.url, api_key), spool_max_bytes)
        self._http = httpx.Client(base_url=self.url, timeout=timeout_s,
                                  headers={"Authorization": f"Bearer {api_key}"})
        self._queue: deque[bytes] = deque()
        self._deferred: deque[_Deferred] = deque()
        self._cond = threading.Condition()
        self._busy = False  # the sender holds a batch it has taken from the queue
        self._closing = False
        self._flushing = 0
        self._down_until = 0.0  # while inferwatch fails, new batches go straight to the spool
        self._first_at = 0.0  # when the oldest queued item was logged
        self._last_from_queue = False
        self._rendered_last = False
        self._failures = 0
        self._thread = threading.Thread(target=self._run, name="inferwatch-sdk", daemon=True)
        self._thread.start()
        # Process exit sends (or spools) what is still queued; a weak reference lets an unused
        # client be collected.
        atexit.register(_close_at_exit, weakref.ref(self))

    # -- logging (the hot path) ------------------------------------------------------------------
    def log(
        self,
        result: Any,
        model_id: str,
        device_id: str | None = None,
        metadata: dict[str, Any] | None = None,
        tags: list[str] | None = None,
        timestamp: float | datetime | None = None,
        source: str | None = None,
        *,
        image: Any = None,
        class_names: list[str] | None = None,
        keypoints: Any = None,
        inference_time: float | None = None,
        bgr: bool = True,
    ) -> str | None:
        """Queues the result of one inference request and returns at once with its inference id
        (None if it could not be logged). Never raises.

        `result` is what `InferenceHTTPClient.infer` returns (a list: one result per image of a
        batch; a result without `inference_id` gets one, set in the dict itself), or a
        `supervision.Detections` (with `keypoints=` a `supervision.KeyPoints` of the same
        objects) or `supervision.KeyPoints`: class names from `data["class_name"]`, else
        `class_names[class_id]`. `image=` (a numpy frame, BGR as OpenCV reads it unless
        `bgr=False`) is measured (`vision.QUALITY_FIELDS`, sent as metadata), JPEG-encoded and
        uploaded as the inference's image by the background thread, never here: do not draw on
        that array afterwards (annotate a copy)."""
        try:
            kind = vision.kind_of(result)
            when = time.time() if timestamp is None else (
                timestamp.isoformat() if isinstance(timestamp, datetime) else timestamp)
            if kind is not None or image is not None:
                return self._defer(result, kind, model_id, device_id, metadata, tags, when, source, image,
                                   class_names, keypoints, inference_time, bgr)
            results = result if isinstance(result, list) else [result]
            ids = [r.get("inference_id") for r in results]
            # Images of one batched request share its id and are told apart by their index.
            shared = len(results) > 1 and len(set(ids)) == 1
            fresh = str(uuid.uuid4()) if shared and ids[0] is None else None
            for r in results:
                if r.get("inference_id") is None:
                    r["inference_id"] = fresh or str(uuid.uuid4())
            lines = []
            for index, r in enumerate(results):
                item = _item(model_id, device_id, metadata, tags, when, source)
                item.update(result=r, inference_id=r["inference_id"], image_index=index if shared else 0)
                lines.append(_encode(item))
        except Exception:  # a result we cannot encode must not break the caller's loop
            log.warning("inferwatch: could not log a result", exc_info=True)
            self.counters.dropped += 1
            return None
        with self._cond:
            self.counters.logged += len(lines)
            if len(self._queue) + len(lines) > self.max_queue:
                self.counters.dropped += len(lines)
                return None
            if not self._queue:
                self._first_at = time.monotonic()
            self._queue.extend(lines)
            if len(self._queue) >= self.batch_size:
                self._cond.notify()
        return str(results[0]["inference_id"])

    def _defer(self, result: Any, kind: str | None, model_id: str, device_id: str | None,
               metadata: dict[str, Any] | None, tags: list[str] | None, when: float | str, source: str | None,
               image: Any, class_names: list[str] | None, keypoints: Any, inference_time: float | None,
               bgr: bool) -> str | None:
        """The caller's half of a supervision object or a frame: a snapshot, queued for the
        background thread."""
        if kind is None:
            if not isinstance(result, dict):
                raise TypeError("with image=, result is one result dict or a supervision object")
            if result.get("inference_id") is None:
                result["inference_id"] = str(uuid.uuid4())
            inference_id = str(result["inference_id"])
            snap, plain = None, msgspec.json.decode(_encode(result))  # a snapshot of the caller's dict
        else:
            inference_id = str(uuid.uuid4())
            snap, plain = vision.snapshot(result, kind, keypoints), None
        deferred = _Deferred(inference_id, model_id, _item(model_id, device_id, metadata, tags, when, source),
                             plain, snap, class_names, inference_time, image, bgr)
        with self._cond:
            self.counters.logged += 1
            if len(self._queue) + len(self._deferred) >= self.max_queue:
                self.counters.dropped += 1
                return None
            self._deferred.append(deferred)
            self._cond.notify()
        return inference_id

    def flush(self, timeout: float | None = None) -> bool:
        """Waits until everything logged so far is acknowledged by inferwatch (True), or the
        timeout passes (False: the rest is queued or spooled and will still be sent)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            self._flushing += 1
            self._cond.notify_all()
            try:
                while self._queue or self._deferred or self._busy or self.spool.waiting_items():
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
                return True
            finally:
                self._flushing -= 1

    def close(self, timeout: float | None = 10.0) -> None:
        """Flushes for up to `timeout`, then spools whatever is left and stops the sender."""
        if self._closing:
            return
        if time.monotonic() >= self._down_until:  # when inferwatch is down, spool at once
            self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the sender thread -------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            with self._cond:
                self._busy = False
                self._cond.notify_all()
                lines = self._next_lines()
                if lines is None:
                    return
                self._busy = True
            try:
                if lines is _RENDER:
                    self._render()
                elif lines:
                    self._send_or_spool(lines)
                else:
                    self._send_spooled()
            except Exception:  # the sender must outlive any surprise
                log.exception("inferwatch: sender error")

    def _next_lines(self) -> list[bytes] | None:
        """Under the lock: the next batch to send ([] = one from the spool), or None to stop.

        Queued items wait for a full batch or the linger; while inferwatch is down they go to the
        spool as they come. When it is up, spooled batches take turns with queued ones, so a
        backlog drains even under steady traffic.
        """
        while True:
            now = time.monotonic()
            down = now < self._down_until
            due = self._queue and (down or self._flushing or self._closing or len(self._queue) >= self.batch_size
                                   or now - self._first_at >= self.linger_s)
            # Deferred calls are made into items between batches: a stream of frames to encode
            # must not hold back the items waiting to be sent, nor the other way round.
            if self._deferred and (self._closing or not (due and self._rendered_last)):
                self._rendered_last = True
                return _RENDER
            self._rendered_last = False
            if self._closing:
                lines = self._take(len(self._queue))
                if lines:
                    self._spill(lines)
                return None
            if not down and (not due or self._last_from_queue) and self.spool.waiting_items():
                self._last_from_queue = False
                return []
            if due:
                self._last_from_queue = True
                return self._take(self.batch_size)
            wait = self._first_at + self.linger_s - now if self._queue else self.linger_s
            self._cond.wait(max(0.001, min(wait, self.linger_s)))

    def _render(self) -> None:
        """The background half of deferred calls: results made from snapshots, frames measured,
        encoded and uploaded; the items then join the queue like any other. A turn lasts at most
        a linger, so queued items still leave on time."""
        until = time.monotonic() + self.linger_s
        while time.monotonic() < until:
            with self._cond:
                if not self._deferred:
                    return
                deferred = self._deferred.popleft()
            try:
                line = self._render_one(deferred)
            except Exception:
                log.warning("inferwatch: could not log a result", exc_info=True)
                self.counters.dropped += 1
                continue
            with self._cond:
                if not self._queue:
                    self._first_at = time.monotonic()
                self._queue.append(line)

    def _render_one(self, d: _Deferred) -> bytes:
        frame = self._frame(d)
        size = vision.image_size(frame) if frame is not None else None
        if d.snap is not None:
            result = vision.to_result(d.snap, d.inference_id, d.class_names, size, d.inference_time)
        else:
            result = d.result or {}
            if size is not None and not result.get("image"):
                result["image"] = {"width": size[0], "height": size[1]}
        item = d.item
        if frame is not None:
            try:
                if self.image_quality:
                    figures = vision.quality(frame, d.bgr)
                    # Numbers, so they are stored typed (drift features, alert averages, range
                    # filters); six significant digits is past any figure's meaning and keeps
                    # the line short.
                    meta: dict[str, Any] = {name: float(f"{value:.6g}") for name, value in figures.items()}
                    meta.update(item.get("metadata") or {})
                    item["metadata"] = meta
                self._upload(d.inference_id, d.model_id, vision.encode_jpeg(frame, d.bgr))
            except Exception:  # a frame we cannot read costs its image, never its inference
                log.warning("inferwatch: could not measure or encode a frame", exc_info=True)
                self.counters.images_dropped += 1
        item.update(result=result, inference_id=d.inference_id, image_index=0)
        return _encode(item)

    def _frame(self, d: _Deferred) -> np.ndarray | None:
        """The frame as an image array (height, width[, channels]), or None (counted) if it is none."""
        if d.image is None:
            return None
        try:
            frame = np.asarray(d.image)
        except Exception:
            frame = None
        if frame is None or frame.ndim not in (2, 3) or frame.shape[0] < 1 or frame.shape[1] < 1:
            log.warning("inferwatch: image= is not a frame (height, width[, channels]); logged without it")
            self.counters.images_dropped += 1
            return None
        return frame

    def _upload(self, inference_id: str, model_id: str, jpeg: bytes) -> None:
        """The frame as the inference's image (the dataset upload route). Images are not spooled:
        while inferwatch is down they are dropped (and counted), the inference itself is not."""
        if time.monotonic() < self._down_until:
            self.counters.images_dropped += 1
            return
        project = quote(model_id.split("/")[0] or "images", safe="")
        try:
            reply = self._http.post(f"/dataset/{project}/upload", params={"inference_id": inference_id},
                                    files={"file": (f"{inference_id}.jpg", jpeg, "image/jpeg")})
        except httpx.HTTPError as exc:
            log.info("inferwatch: image upload failed: %s", exc)
            self.counters.images_dropped += 1
            return
        if reply.status_code == 200:
            self.counters.images_sent += 1
        else:
            log.warning("inferwatch refused an image (HTTP %d): %s", reply.status_code, reply.text[:300])
            self.counters.images_dropped += 1

    def _take(self, n: int) -> list[bytes]:
        return [self._queue.popleft() for _ in range(min(n, len(self._queue)))]

    def _send_or_spool(self, lines: list[bytes]) -> None:
        if time.monotonic() < self._down_until:
            self._spill(lines)
            return
        try:
            self._deliver(lines)
        except _Transient as exc:
            self._spill(lines)
            self._went_down(exc)

    def _send_spooled(self) -> None:
        batch = self.spool.claim()
        if batch is None:
            return
        lines = gzip.decompress(Spool.read(batch)).split(b"\n")
        try:
            self._deliver([line for line in lines if line])
        except _Transient as exc:
            Spool.release(batch)
            self._went_down(exc)
            return
        Spool.done(batch)

    def _deliver(self, lines: list[bytes]) -> None:
        """Sends lines until each is acknowledged or refused for good (counted as dropped)."""
        while lines:
            status, body = self._post(lines)
            if status == 200:
                self.counters.sent += len(lines)
                self._failures = 0
                self._down_until = 0.0
                return
            if status == 413 and len(lines) > 1:  # too big for the server's limits: halve it
                half = len(lines) // 2
                self._deliver(lines[:half])
                lines = lines[half:]
                continue
            bad = _refused_items(status, body)
            if bad:  # the server names the invalid items: drop those, send the rest
                log.warning("inferwatch refused %d logged items: %s", len(bad), body[:500])
                self.counters.dropped += len(bad)
                lines = [line for i, line in enumerate(lines) if i not in bad]
                continue
            log.warning("inferwatch refused a batch of %d items (HTTP %d): %s", len(lines), status, body[:500])
            self.counters.dropped += len(lines)
            return

    def _post(self, lines: list[bytes]) -> tuple[int, bytes]:
        try:
            workspace = self.workspace
            reply = self._http.post(
                f"/api/v1/{workspace}/inferences", content=gzip.compress(b"\n".join(lines), 1),
                headers={"Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"},
            )
        except (httpx.HTTPError, InferwatchError) as exc:
            raise _Transient(str(exc)) from None
        if reply.status_code in (408, 425, 429) or reply.status_code >= 500:
            raise _Transient(f"HTTP {reply.status_code}", _retry_after(reply.headers.get("retry-after")))
        return reply.status_code, reply.content

    def _spill(self, lines: list[bytes]) -> None:
        dropped = self.spool.put(gzip.compress(b"\n".join(lines), 1), len(lines))
        self.counters.spilled += len(lines)
        self.counters.dropped += dropped

    def _went_down(self, exc: _Transient) -> None:
        self._failures += 1
        self.counters.retried += 1
        backoff = min(self.max_backoff_s, 0.25 * 2 ** min(self._failures, 10)) * random.uniform(0.5, 1.0)
        wait = max(backoff, exc.wait_s or 0.0)
        log.info("inferwatch unreachable (%s); retrying in %.1f s, spooling meanwhile", exc, wait)
        self._down_until = time.monotonic() + wait

    # -- explicit calls ----------------------------------------------------------------------------
    @property
    def workspace(self) -> str:
        """The workspace of the key, asked once from the server when not given."""
        if self._workspace is None:
            self._workspace = str(self._call("GET", "/", params={"api_key": self.api_key})["workspace"])
        return self._workspace

    def attach_metadata(self, inference_ids: list[str] | str, field_name: str,
                        field_value: str | int | float | bool) -> None:
        """Sets one field on these inferences (last write wins), through the Roboflow-compatible
        endpoint; the inferences may not have arrived yet. A number or a flag stays one (range
        filters and numeric figures read it); anything else is sent as its text."""
        ids = [inference_ids] if isinstance(inference_ids, str) else list(inference_ids)
        for start in range(0, len(ids), _MAX_IDS_PER_CALL):
            self._metadata([{"inference_ids": ids[start:start + _MAX_IDS_PER_CALL], "field_name": field_name,
                             "field_value": _meta_value(field_value)}])

    def attach_many(self, values: dict[str, dict[str, Any]]) -> None:
        """`{inference_id: {field: value}}`, grouped into as few entries as the values allow."""
        grouped: dict[tuple[str, type, Any], list[str]] = {}
        for inference_id, fields in values.items():
            for name, value in fields.items():
                sent = _meta_value(value)
                grouped.setdefault((name, type(sent), sent), []).append(inference_id)  # 1, 1.0, True apart
        entries: list[dict[str, Any]] = []
        count = 0
        for (name, _, value), ids in grouped.items():
            for start in range(0, len(ids), _MAX_IDS_PER_CALL):
                chunk = ids[start:start + _MAX_IDS_PER_CALL]
                if count + len(chunk) > _MAX_IDS_PER_CALL and entries:
                    self._metadata(entries)
                    entries, count = [], 0
                entries.append({"inference_ids": chunk, "field_name": name, "field_value": value})
                count += len(chunk)
        if entries:
            self._metadata(entries)

    def _metadata(self, entries: list[dict[str, Any]]) -> None:
        self._call("POST", f"/{self.workspace}/inference-stats/metadata", json={"data": entries})

    def inferences(self, page_size: int = 500, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every inference matching the filters, newest first, fetched a page at a time.

        Filters are the list API's: `model_id`, `device_id`, `class_` (or `cls`), `tag`,
        `min_confidence`, `max_confidence`, `start`/`end` (datetime or unix seconds; also `from_`
        and `to`), and `meta={"field": "value", ...}`: a list of values means any of them, and a
        comparison goes in brackets after the field (`meta={"temperature[gt]": 150}`).
        """
        params = _filter_params(filters)
        params.append(("limit", str(page_size)))
        cursor: str | None = None
        while True:
            page = self._call("GET", f"/api/v1/{self.workspace}/inferences",
                              params=params + ([("cursor", cursor)] if cursor else []))
            yield from page["inferences"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def stats(self, bucket: str | None = None, group_by: str | None = None, numeric: str | None = None,
              **filters: Any) -> dict[str, Any]:
        """Totals and a time series (`GET /api/v1/{workspace}/stats`), same filters as `inferences`;
        `numeric="meta.<field>"` adds that field's count, average, min and max."""
        params = _filter_params(filters)
        params += [(name, value) for name, value in (("bucket", bucket), ("group_by", group_by), ("numeric", numeric))
                   if value]
        result: dict[str, Any] = self._call("GET", f"/api/v1/{self.workspace}/stats", params=params)
        return result

    def export(self, path: str | Path | None = None, format: str = "parquet", **filters: Any) -> list[dict[str, Any]]:
        """The matching inferences as flat rows (one per inference: time, ids, model, device,
        task, counts, top class and confidence, inference time, each metadata field as
        `meta.<field>`), written to `path` as Parquet or CSV when given, and returned."""
        from inferwatch.sdk.export import flatten, write

        rows = [flatten(inference) for inference in self.inferences(**filters)]
        if path is not None:
            write(rows, Path(path), format)
        return rows

    def export_dataset(self, path: str | Path, format: str = "coco", params: list[tuple[str, str]] | None = None,
                       **filters: Any) -> int:
        """Writes the matching inferences' images with their predictions as pre-annotations, a
        COCO or YOLO zip (`GET /api/v1/{workspace}/export/dataset`), to `path`; returns its size.
        Filters as for `inferences`, or `params` as raw query pairs."""
        query: list[tuple[str, str | int | float | bool | None]] = [
            ("format", format), *(params or []), *_filter_params(filters)]
        target = Path(path)
        partial = target.with_name(target.name + ".part")
        try:
            with self._http.stream("GET", f"/api/v1/{self.workspace}/export/dataset", params=query,
                                   timeout=None) as reply:
                if reply.status_code != 200:
                    reply.read()
                    raise InferwatchError(f"HTTP {reply.status_code} from the dataset export: {reply.text[:500]}")
                with open(partial, "wb") as out:
                    for chunk in reply.iter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            partial.unlink(missing_ok=True)
            raise InferwatchError(f"inferwatch at {self.url} is unreachable: {exc}") from None
        partial.replace(target)
        return target.stat().st_size

    def dataframe(self, kind: str = "pandas", **filters: Any) -> Any:
        """`export` as a pandas (or `kind="polars"`) DataFrame; needs that library installed."""
        from inferwatch.sdk.export import to_frame

        return to_frame(self.export(**filters), kind)

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            reply = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise InferwatchError(f"inferwatch at {self.url} is unreachable: {exc}") from None
        if reply.status_code != 200:
            raise InferwatchError(f"HTTP {reply.status_code} from {method} {path}: {reply.text[:500]}")
        return reply.json()


# Tells the sender to render deferred calls rather than send a batch.
_RENDER: list[bytes] = []


def _item(model_id: str, device_id: str | None, metadata: dict[str, Any] | None, tags: list[str] | None,
          when: float | str, source: str | None) -> dict[str, Any]:
    item: dict[str, Any] = {"model_id": model_id, "timestamp": when}
    if device_id is not None:
        item["device_id"] = device_id
    if metadata:
        item["metadata"] = dict(metadata)
    if tags:
        item["tags"] = list(tags)
    if source is not None:
        item["source"] = source
    return item


def _close_at_exit(ref: weakref.ref[Client]) -> None:
    client = ref()
    if client is not None:
        client.close(timeout=5.0)


def _refused_items(status: int, body: bytes) -> set[int]:
    """The indices a 400 names as invalid (`detail: [{"index": i, ...}]`), else nothing."""
    if status != 400:
        return set()
    try:
        detail = msgspec.json.decode(body).get("detail")
    except (msgspec.DecodeError, AttributeError):
        return set()
    if not isinstance(detail, list):
        return set()
    return {d["index"] for d in detail if isinstance(d, dict) and isinstance(d.get("index"), int)}


def _retry_after(value: str | None) -> float | None:
    try:
        return min(float(value), 300.0) if value else None
    except ValueError:
        return None


def _meta_value(value: Any) -> str | int | float | bool:
    """A metadata value as the API takes it: a string, number or flag as is, else its text."""
    return value if isinstance(value, str | int | float | bool) else str(value)


def _filter_params(filters: dict[str, Any]) -> list[tuple[str, str]]:
    names = {"class_": "class", "cls": "class", "from_": "from", "start": "from", "end": "to"}
    params: list[tuple[str, str]] = []
    for key, value in filters.items():
        if value is None:
            continue
        if key == "meta":
            for name, wanted in value.items():
                for v in wanted if isinstance(wanted, list | tuple) else [wanted]:
                    params.append((f"meta.{name}", "true" if v is True else "false" if v is False else str(v)))
            continue
        if isinstance(value, datetime):
            value = value.isoformat()
        values = value if isinstance(value, list | tuple) else [value]
        params.extend((names.get(key, key), str(v)) for v in values)
    return params
