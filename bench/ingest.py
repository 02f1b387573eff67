"""Ingest benchmark: sustained inference events/s of a real server, and what the engine alone does.

Run from the repository root:

    .venv/bin/python bench/ingest.py [--seconds 20] [--connections 64] [--processes 4] [--batch 100]
                                     [--store duckdb|chdb] [--key-scopes all|ingest]

1. Starts the real server (a subprocess, as the tests do) on a fresh data directory.
2. Loads it from separate processes over loopback: `--connections` keep-alive HTTP connections
   in total, each a thread with its own `http.client.HTTPConnection`, spread over `--processes`.
   Every request is the same pre-serialised body of `--batch` inferences (3 detections each)
   whose inference ids get a fresh prefix by byte substitution, so no item is ever a duplicate
   and the load generator costs little CPU next to the server it measures.
3. Counts only items acknowledged with 200, over the measured window (after a warm-up).
4. Stops the server and checks the store: committed rows == acknowledged items.
5. Times the store's `append` alone on the same rows (built by the project's own decode and
   `to_rows`) into a fresh store, a few commits of `--commit-rows`, and prints service/engine.

`--store chdb` runs both on the ClickHouse backend, on the engine in-process (chdb), instead of
the embedded DuckDB file.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from multiprocessing.queues import Queue
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "src") not in sys.path:
    sys.path.append(str(ROOT / "src"))

import msgspec  # noqa: E402
from tests.server import Server  # noqa: E402

from inferwatch.ingest import native  # noqa: E402
from inferwatch.ingest.rows import InferenceRows, MetadataRows  # noqa: E402
from inferwatch.query.filters import Filters  # noqa: E402
from inferwatch.store import open_store  # noqa: E402

# Replaced in every request by a 16-byte prefix unique to (process, thread, request).
PLACEHOLDER = b"@@@@@@@@@@@@@@@@"
CLASSES = ("person", "car", "bicycle", "dog", "truck", "traffic light")
WARMUP_S = 2.0


def template_body(batch: int) -> bytes:
    """A realistic batch: what `InferenceHTTPClient.infer` returns for a detector, wrapped."""
    items: list[dict[str, Any]] = []
    for i in range(batch):
        preds = []
        for j in range(3):
            cls = (i + j) % len(CLASSES)
            preds.append({
                "x": 100.5 + 7 * i % 500, "y": 80.25 + 13 * j, "width": 40.0 + j, "height": 90.0 + i % 17,
                "confidence": round(0.35 + ((i * 7 + j * 11) % 60) / 100, 4),
                "class": CLASSES[cls], "class_id": cls,
                "detection_id": f"{PLACEHOLDER.decode()}-{i:04d}-{j}",
            })
        items.append({
            "model_id": f"coco/{24 + i % 2}",
            "device_id": f"camera-{i % 8:02d}",
            "result": {
                "inference_id": f"{PLACEHOLDER.decode()}-{i:04d}",
                "time": round(0.015 + (i % 10) / 1000, 4),
                "image": {"width": 640, "height": 480},
                "predictions": preds,
            },
        })
    return msgspec.json.encode({"inferences": items})


# -- load generator (child processes) ------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Load:
    """What each load thread sends (the template body, POSTed to `path`) and what answer counts as
    acknowledged: `status` with `expect` in its body, standing for `batch` items."""

    path: str
    status: int
    expect: bytes
    batch: int


@dataclass(slots=True)
class WorkerReport:
    done_at: list[float]  # time.time() when each acknowledging answer arrived
    acked: list[int]  # items acknowledged by that answer
    latency: list[float]  # seconds, every request that got an answer
    refused: dict[int, int]  # answers that did not acknowledge, by status
    errors: list[str]
    cpu_s: float = 0.0  # CPU time of the load process (all its threads) while it sent


def _connection(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=60)


def _exchange(sock: socket.socket, request: bytes) -> tuple[int, bytes]:
    """One HTTP/1.1 request on a keep-alive socket: (status, body). Written on the socket directly
    because `http.client` parses every answer's headers with the email package, which cost the
    load processes more CPU than the server spent per request, on the same two cores."""
    sock.sendall(request)
    data = b""
    while (end := data.find(b"\r\n\r\n")) < 0:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        data += chunk
    head = data[:end].lower()
    status = int(head[9:12])
    at = head.find(b"\r\ncontent-length:")
    if at < 0:
        raise ConnectionError(f"answer without Content-Length: {head[:200]!r}")
    length = int(head[at + 17:].split(b"\r\n", 1)[0])
    body = data[end + 4:]
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        body += chunk
    return status, body


def _thread(port: int, key: str, body: bytes, load: Load, prefix: str, start_at: float, stop_at: float,
            report: WorkerReport, lock: threading.Lock) -> None:
    head = (f"POST {load.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    done_at: list[float] = []
    acked: list[int] = []
    latency: list[float] = []
    refused: dict[int, int] = {}
    errors: list[str] = []
    con = _connection(port)
    seq = 0
    while time.time() < start_at:
        time.sleep(0.001)
    while True:
        begun = time.time()
        if begun >= stop_at:
            break
        seq += 1
        # The same length as the placeholder, so Content-Length holds.
        this = head + body.replace(PLACEHOLDER, f"{prefix}{seq:09d}".encode())
        try:
            status, data = _exchange(con, this)
        except (OSError, ValueError) as exc:
            errors.append(repr(exc))
            con.close()
            con = _connection(port)
            continue
        ended = time.time()
        latency.append(ended - begun)
        if status == load.status and load.expect in data:
            done_at.append(ended)
            acked.append(load.batch)
        else:
            refused[status] = refused.get(status, 0) + 1
            if len(errors) < 3:
                errors.append(f"{status}: {data[:300]!r}")
    con.close()
    with lock:
        report.done_at.extend(done_at)
        report.acked.extend(acked)
        report.latency.extend(latency)
        for status, n in refused.items():
            report.refused[status] = report.refused.get(status, 0) + n
        report.errors.extend(errors[:10])


def _process(index: int, threads: int, port: int, key: str, body: bytes, load: Load, times: Any,
             ready: Any, go: Any, out: Queue[WorkerReport]) -> None:
    # Started, then told when to begin: on a busy machine spawning the children takes seconds.
    ready.wait()
    go.wait()
    start_at, stop_at = times[0], times[1]
    report = WorkerReport([], [], [], {}, [])
    cpu_before = time.process_time()
    lock = threading.Lock()
    workers = [
        threading.Thread(target=_thread, args=(port, key, body, load, f"p{index:02d}t{t:03d}", start_at,
                                               stop_at, report, lock))
        for t in range(threads)
    ]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    report.cpu_s = time.process_time() - cpu_before
    out.put(report)


@dataclass(slots=True)
class ServiceResult:
    events_per_s: float  # acknowledged items over the measured window
    per_second: list[float]  # acknowledged items in each whole second of the window
    p50_ms: float
    p99_ms: float
    requests: int
    non_200: dict[int, int]
    errors: list[str]
    acked_total: int
    committed: int
    commits: int  # group commits of the writer, over the whole run
    rows_per_commit: float
    commit_ms: float  # mean time of one group commit
    server_cpu_us_per_event: float  # CPU time of the server process (all threads) per acknowledged item
    load_cpu_us_per_event: float  # the same for the load processes together


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _writer_metrics(url: str) -> tuple[int, float, float]:
    """(group commits, seconds spent committing, rows committed) from the server's /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=30) as answer:
        text = answer.read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in ("inferwatch_commit_seconds_count", "inferwatch_commit_seconds_sum",
                    "inferwatch_ingested_rows_total"):
            values[name] = float(value)
    return (int(values.get("inferwatch_commit_seconds_count", 0)), values.get("inferwatch_commit_seconds_sum", 0.0),
            values.get("inferwatch_ingested_rows_total", 0.0))


def store_url(kind: str, folder: Path) -> str:
    """The store URL of a benchmark's data folder: the embedded file, or a chdb data folder."""
    return f"duckdb://{folder / 'inferwatch.duckdb'}" if kind == "duckdb" else f"chdb://{folder / 'chdb'}"


def _committed(url: str) -> int:
    """Inferences in the store (of the one workspace a fresh server makes), read after the
    server stopped: DuckDB locks its file to one process, and chdb its folder."""
    store = open_store(url)
    try:
        return int(store.totals(1, Filters()).inferences)
    finally:
        store.close()


def ingest_key(server: Server, scopes: str) -> str:
    """The key the load sends with: the first key, or a key made with only `scopes`, as an edge
    device would hold one (an `ingest` key must cost no more per request than the first key)."""
    if scopes == "all":
        return server.initial_key
    with server.client(headers={"Authorization": f"Bearer {server.initial_key}"}) as client:
        reply = client.post("/api/v1/default/keys", json={"name": "bench", "scopes": scopes.split(",")})
        reply.raise_for_status()
        return str(reply.json()["api_key"])


def drive(server: Server, key: str, body: bytes, load: Load, seconds: float, connections: int,
          processes: int) -> tuple[list[WorkerReport], float, float, float]:
    """Loads the server from `processes` spawned children (`connections` keep-alive sockets in
    all) for a warm-up and then `seconds`: each child's report, when the load began and ended, and
    the server's CPU seconds meanwhile."""
    ctx = mp.get_context("spawn")
    out: Queue[WorkerReport] = ctx.Queue()
    per_process = [connections // processes + (1 if i < connections % processes else 0) for i in range(processes)]
    times = ctx.Array("d", 2)
    ready = ctx.Barrier(sum(1 for n in per_process if n) + 1)
    go = ctx.Event()
    children = [ctx.Process(target=_process, args=(i, n, server.port, key, body, load, times, ready, go, out))
                for i, n in enumerate(per_process) if n]
    for c in children:
        c.start()
    ready.wait()
    start_at = time.time() + 1.0  # time for the children's threads to connect
    stop_at = start_at + WARMUP_S + seconds
    times[0], times[1] = start_at, stop_at
    go.set()
    cpu_before = _cpu_seconds(server.pid)
    reports = [out.get(timeout=seconds + 120) for _ in children]
    for c in children:
        c.join()
    return reports, start_at, stop_at, _cpu_seconds(server.pid) - cpu_before


@dataclass(slots=True)
class Tally:
    """The children's reports together: items acknowledged per second of the measured window, and
    in all of it; every request's latency, sorted; the refused answers by status; all items
    acknowledged (the warm-up's too)."""

    per_second: list[float]
    in_window: int
    latency: list[float]
    refused: dict[int, int]
    acked: int


def tally(reports: list[WorkerReport], start_at: float, stop_at: float, seconds: float) -> Tally:
    window_start = start_at + WARMUP_S
    buckets = [0.0] * max(1, int(seconds))
    in_window = 0
    refused: dict[int, int] = {}
    for r in reports:
        for t, n in zip(r.done_at, r.acked, strict=True):
            slot = int(t - window_start)
            if window_start <= t and slot < len(buckets):
                buckets[slot] += n
            in_window += n if window_start <= t < stop_at else 0
        for status, count in r.refused.items():
            refused[status] = refused.get(status, 0) + count
    return Tally(buckets, in_window, sorted(x for r in reports for x in r.latency), refused,
                 sum(n for r in reports for n in r.acked))


def run_service(seconds: float, connections: int, processes: int, batch: int, kind: str,
                scopes: str = "all") -> ServiceResult:
    body = template_body(batch)
    tmp = Path(tempfile.mkdtemp(prefix="inferwatch-bench-"))
    url = store_url(kind, (tmp / "data").resolve())
    server = Server(tmp / "data", "--store", url).start()
    try:
        key = ingest_key(server, scopes)
        load = Load("/api/v1/default/inferences", 200, b'"accepted":%d' % batch, batch)
        reports, start_at, stop_at, server_cpu = drive(server, key, body, load, seconds, connections, processes)
        commits, commit_s, committed_rows = _writer_metrics(server.url)
    finally:
        server.stop()

    counted = tally(reports, start_at, stop_at, seconds)

    committed = _committed(url)
    if committed == counted.acked:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"  (data directory kept for inspection: {tmp})")
    return ServiceResult(
        commits=commits,
        rows_per_commit=committed_rows / commits if commits else 0.0,
        commit_ms=commit_s / commits * 1000 if commits else 0.0,
        server_cpu_us_per_event=server_cpu / counted.acked * 1e6 if counted.acked else 0.0,
        load_cpu_us_per_event=sum(r.cpu_s for r in reports) / counted.acked * 1e6 if counted.acked else 0.0,
        events_per_s=counted.in_window / seconds,
        per_second=counted.per_second,
        p50_ms=_quantile(counted.latency, 0.50) * 1000,
        p99_ms=_quantile(counted.latency, 0.99) * 1000,
        requests=len(counted.latency),
        non_200=counted.refused,
        errors=[e for r in reports for e in r.errors][:10],
        acked_total=counted.acked,
        committed=committed,
    )


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


# -- the engine alone ----------------------------------------------------------------------------

@dataclass(slots=True)
class EngineResult:
    rows_per_s: list[float]  # one figure per commit
    commit_rows: int


def run_engine(batch: int, commit_rows: int, commits: int, kind: str) -> EngineResult:
    """The store's `append` of the rows the service would build, timed without HTTP or decoding."""
    body = template_body(batch)
    requests_per_commit = max(1, commit_rows // batch)
    tmp = Path(tempfile.mkdtemp(prefix="inferwatch-bench-engine-"))
    store = open_store(store_url(kind, tmp))
    store.migrate()
    ws = 1
    now_us = time.time_ns() // 1000
    groups: list[InferenceRows] = []
    seq = 0
    for _ in range(commits + 1):  # the first commit is a warm-up
        group = InferenceRows()
        for _ in range(requests_per_commit):
            seq += 1
            items = native.decode_json(body.replace(PLACEHOLDER, f"engine{seq:010d}".encode()))
            rows, _meta, _ids = native.to_rows(items, ws, now_us)
            group.extend(rows)
        groups.append(group)
    rates: list[float] = []
    try:
        for i, group in enumerate(groups):
            started = time.perf_counter()
            new = store.append(group, MetadataRows())
            elapsed = time.perf_counter() - started
            if new != len(group):
                raise RuntimeError(f"engine commit stored {new} of {len(group)} rows")
            if i:
                rates.append(len(group) / elapsed)
    finally:
        store.close()
        shutil.rmtree(tmp, ignore_errors=True)
    return EngineResult(rates, requests_per_commit * batch)


# -- report --------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window (after a warm-up)")
    parser.add_argument("--connections", type=int, default=64,
                        help="keep-alive connections in total: one per edge device of a plant (at least 16)")
    parser.add_argument("--processes", type=int, default=4, help="load-generator processes")
    parser.add_argument("--batch", type=int, default=100, help="inferences per request")
    parser.add_argument("--commit-rows", type=int, default=5000, help="rows per engine-only commit")
    parser.add_argument("--commits", type=int, default=8, help="engine-only commits timed")
    parser.add_argument("--key-scopes", default="all",
                        help="the load's key: `all` (the first key) or a comma list of scopes for a new key")
    parser.add_argument("--store", choices=("duckdb", "chdb"), default="duckdb",
                        help="the embedded DuckDB file, or the ClickHouse backend on its in-process engine")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.processes < 1 or args.batch < 1 or args.seconds <= 0:
        parser.error("--connections, --processes, --batch and --seconds must be positive")

    print(f"service: {args.connections} connections in {args.processes} processes, {args.batch} inferences"
          f" (3 detections each) per request, {WARMUP_S:.0f} s warm-up + {args.seconds:.0f} s measured",
          flush=True)
    svc = run_service(args.seconds, args.connections, args.processes, args.batch, args.store, args.key_scopes)
    print(f"  acknowledged events/s (window): {svc.events_per_s:,.0f}")
    print(f"  per second: {', '.join(f'{x:,.0f}' for x in svc.per_second)}")
    print(f"  requests answered: {svc.requests:,}; latency p50 {svc.p50_ms:.1f} ms, p99 {svc.p99_ms:.1f} ms")
    print(f"  non-200 answers: {sum(svc.non_200.values())} {svc.non_200 or ''}")
    print(f"  writer: {svc.commits:,} group commits, {svc.rows_per_commit:,.0f} rows and {svc.commit_ms:.1f} ms"
          " each on average")
    print(f"  server CPU: {svc.server_cpu_us_per_event:.1f} us per acknowledged event (all threads);"
          f" load processes: {svc.load_cpu_us_per_event:.1f} us")
    for e in svc.errors:
        print(f"  error: {e}")
    committed_ok = svc.committed == svc.acked_total > 0
    print(f"  committed check: {svc.committed:,} rows in the store, {svc.acked_total:,} acknowledged"
          f" -> {'OK' if committed_ok else 'MISMATCH'}", flush=True)

    engine = "DuckDBStore.append" if args.store == "duckdb" else "ClickHouseStore.append on chdb"
    print(f"engine: {engine} of {args.commits} commits of {args.commit_rows:,} rows into a fresh store",
          flush=True)
    eng = run_engine(args.batch, args.commit_rows, args.commits, args.store)
    engine_rate = statistics.median(eng.rows_per_s)
    print(f"  rows/s per commit: {', '.join(f'{x:,.0f}' for x in eng.rows_per_s)}")

    service_median = statistics.median(svc.per_second)
    print()
    print("```")
    print(f"inferwatch ingest benchmark, {args.store} store ({mp.cpu_count()} cores, loopback,"
          f" {args.connections} keep-alive connections in {args.processes} processes,"
          f" {args.batch} inferences x 3 detections per request)")
    print(f"  sustained          {service_median:>10,.0f} inference events/s (median of 1 s windows;"
          f" mean {svc.events_per_s:,.0f})")
    print(f"  request latency    p50 {svc.p50_ms:.1f} ms, p99 {svc.p99_ms:.1f} ms;"
          f" non-200: {sum(svc.non_200.values())}")
    print(f"  committed check    {svc.committed:,} rows == {svc.acked_total:,} acknowledged:"
          f" {'OK' if committed_ok else 'MISMATCH'}")
    print(f"  engine alone       {engine_rate:>10,.0f} rows/s ({engine}, median of {len(eng.rows_per_s)}"
          f" commits of {eng.commit_rows:,} rows)")
    print(f"  service / engine   {service_median / engine_rate:.2f}")
    print("```")
    return 0 if committed_ok else 1


if __name__ == "__main__":
    sys.exit(main())
