"""Where the proxy's recorded inferences go: through the SDK (`inferwatch proxy`, a process of its
own), or straight into the server's writer (the proxy mounted in `inferwatch serve`).

Both take the call on the event loop after the answer has gone out and return at once; neither
raises: a result inferwatch cannot take is counted and logged, never the caller's problem.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from inferwatch.proxy.recognize import Found, RequestFacts, lean

if TYPE_CHECKING:
    from inferwatch.api.common import Runtime
    from inferwatch.sdk import Client

log = logging.getLogger("inferwatch.proxy")

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class Record:
    """The inferences of one answer and what the request said about them."""

    found: list[Found]
    facts: RequestFacts
    device_id: str | None
    timestamp: float


@dataclass(slots=True)
class ProxyCounters:
    """What the proxy did with inference answers: `recorded` results handed to inferwatch,
    `unrecorded` results it could not hand over (no model id, no workspace, inferwatch refused)."""

    forwarded: int = 0
    upstream_errors: int = 0
    recorded: int = 0
    unrecorded: int = 0


class Recorder(Protocol):
    counters: ProxyCounters

    def record(self, record: Record) -> None: ...

    def close(self) -> None: ...


class SdkRecorder:
    """Records through an SDK `Client`: queued in memory, sent in batches by its thread, spooled
    to disk while inferwatch is down, so the proxy keeps answering whatever inferwatch does."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.counters = ProxyCounters()

    def record(self, record: Record) -> None:
        for found in record.found:
            if not found.model_id:
                self.counters.unrecorded += len(found.results)
                continue
            results = [lean(r) for r in found.results]
            self.client.log(results if len(results) > 1 else results[0], model_id=found.model_id,
                            device_id=record.device_id, timestamp=record.timestamp, source=record.facts.source)
            self.counters.recorded += len(results)

    def close(self) -> None:
        self.client.close()


class WriterRecorder:
    """Records into the running server's own writer, in the workspace of the request's API key,
    else `default_workspace`.

    Inside the server an SDK client would send the rows over HTTP to the same process, with a
    second queue and a spool that buys nothing: if this process is down, so is the proxy. Going
    straight to the writer keeps one queue, one validation (the native format's, as a POST would
    get) and no loopback traffic. The writer's future is not awaited: the answer has gone out.
    """

    def __init__(self, runtime: Callable[[], Runtime], default_workspace: str | None) -> None:
        self._runtime = runtime
        self.default_workspace = default_workspace
        self.counters = ProxyCounters()

    def record(self, record: Record) -> None:
        from inferwatch.errors import ApiError
        from inferwatch.ingest import native

        n = sum(len(f.results) for f in record.found)
        rt = self._runtime()
        ws = rt.keys.by_key(record.facts.api_key) if record.facts.api_key else None
        if ws is None and self.default_workspace:
            ws = rt.keys.by_slug(self.default_workspace)
        if ws is None:
            self.counters.unrecorded += n
            log.debug("proxy: no workspace for this request's key and no --proxy-workspace; not recorded")
            return
        try:
            # Through the native format's own decoder: exactly what an SDK's POST would be checked by.
            lines = [_encode(item) for item in _items(record)]
            if lines:
                items = native.decode_ndjson(b"\n".join(lines))
                rows, meta, _ = native.to_rows(items, ws.id, time.time_ns() // 1000)
                rt.writer.submit(rows, meta).add_done_callback(_log_failure)
        except ApiError as exc:  # an invalid result, or the writer's queue is full
            self.counters.unrecorded += n
            log.warning("proxy: inferwatch did not take %d results: %s", n, exc.detail)
            return
        except Exception:  # anything else the answer held (JSON nested too deep, ...)
            self.counters.unrecorded += n
            log.warning("proxy: could not record %d results", n, exc_info=True)
            return
        self.counters.recorded += len(lines)
        self.counters.unrecorded += n - len(lines)  # results without a model id

    def close(self) -> None:
        pass


def _items(record: Record) -> list[dict[str, Any]]:
    """Native ingest items, as the SDK's `log` builds them: images sharing an id get indices."""
    items: list[dict[str, Any]] = []
    for found in record.found:
        if not found.model_id:
            continue
        shared = len(found.results) > 1
        for index, result in enumerate(found.results):
            item: dict[str, Any] = {"model_id": found.model_id, "result": lean(result),
                                    "inference_id": result["inference_id"], "image_index": index if shared else 0,
                                    "timestamp": record.timestamp}
            if record.device_id:
                item["device_id"] = record.device_id
            if record.facts.source:
                item["source"] = record.facts.source
            items.append(item)
    return items


def _log_failure(done: Any) -> None:
    exc = done.exception()
    if exc is not None:
        log.warning("proxy: recording failed in the writer: %s", exc)
