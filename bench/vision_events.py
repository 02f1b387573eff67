"""Vision Events benchmark: batch create (events/s) and the query on 5 million events (ms).

Run from the repository root:

    .venv/bin/python bench/vision_events.py [--seconds 20] [--connections 64] [--processes 4]
                                            [--events 5000000] [--runs 9] [--cache-dir .bench-cache]
                                            [--only create|query] [--src TREE] [--reads SECONDS]

1. Batch create: starts the real server (a subprocess, as the tests do) on a fresh data
   directory, uploads one image, makes a use case, then loads `POST /vision-events/batch` from
   `--processes` child processes over loopback (`--connections` keep-alive sockets in all, as
   bench/ingest.py does: by default one per edge device of a plant, 64; each waits for its
   answer before sending again, so the count sets how many events a commit can group). Every
   request is the same pre-serialised batch of 100 events, each naming the uploaded image as its
   `sourceId`, with three `objectDetections`, three `customMetadata` entries (one a number) and
   an event type; their event ids get a fresh prefix by byte substitution, so every event is new.
   Only 201 answers count; the server's CPU time per event and the load average are printed,
   since on a shared machine the events/s follow the neighbours. After the server stopped, the
   store's event count must equal the acknowledged one. With `--reads SECONDS`, the bench also
   asks the dashboard's questions every SECONDS while the load runs (the overview's figures, a
   custom-metadata field and the use case as group-bys over 24 hours) and prints how long each
   answer took: what a user watching the dashboard of a plant that is writing waits.
2. Query: fills a store with `--events` events (one image, three detections, the same metadata
   fields each) through the store's own insert statements (DuckDB generates the rows, as
   bench/dashboard.py does), keeps it under `--cache-dir`, starts the real server on it and times
   `POST /vision-events/query` with a numeric-range custom-metadata filter plus an event-type
   filter, and a few other filter shapes: the median of `--runs` runs after a warm-up.

`--src` runs the server from another source tree (e.g. `git archive` of an older commit's
`src/`), to compare before and after alternately on the same machine.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "src") not in sys.path:
    sys.path.append(str(ROOT / "src"))
if str(ROOT / "bench") not in sys.path:
    sys.path.append(str(ROOT / "bench"))

import httpx  # noqa: E402
import msgspec  # noqa: E402
from PIL import Image  # noqa: E402
from tests.server import Server  # noqa: E402

from dashboard import _iso, cpu_ms  # noqa: E402
from inferwatch import bootstrap  # noqa: E402
from inferwatch.config import Settings  # noqa: E402
from inferwatch.store import open_store  # noqa: E402
from inferwatch.store.duckdb import DuckDBStore, schema  # noqa: E402
from inferwatch.store.events import ACTIVE, UseCaseRecord  # noqa: E402
from ingest import PLACEHOLDER, WARMUP_S, Load, _quantile, drive, tally  # noqa: E402

BATCH = 100
CLASSES = ("scratch", "dent", "burn")
TYPES = ("quality_check", "inventory_count", "safety_alert", "custom")


def _env(src: Path | None) -> dict[str, str] | None:
    return {"PYTHONPATH": str(src.resolve())} if src else None


# -- batch create ---------------------------------------------------------------------------------

def template_body(use_case: str, source_id: str) -> bytes:
    """100 events as a line-inspection camera sends them: one image, three boxes, three fields."""
    now = datetime.now(UTC)
    events = []
    for i in range(BATCH):
        events.append({
            "eventId": f"{PLACEHOLDER.decode()}-{i:03d}",
            "eventType": TYPES[i % len(TYPES)],
            "useCaseId": use_case,
            "timestamp": (now - timedelta(seconds=i)).isoformat(),
            "deviceId": f"camera-{i % 8}",
            "images": [{
                "sourceId": source_id,
                "objectDetections": [
                    {"class": CLASSES[j], "x": 100.5 + 7 * i, "y": 80.25 + 13 * j, "width": 40.0 + j,
                     "height": 90.0 + i % 17, "confidence": round(0.35 + ((i * 7 + j * 11) % 60) / 100, 4)}
                    for j in range(3)],
            }],
            "customMetadata": {"temperature": round(60 + (i * 37 % 1000) / 10, 1), "line": f"line-{i % 3}",
                               "operator": f"op-{i % 5}"},
        })
    return msgspec.json.encode({"events": events})


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (9, 99, 199)).save(out, "PNG")
    return out.getvalue()


def setup_use_case(server: Server) -> tuple[str, str]:
    """(use case id, sourceId of an uploaded image) in a fresh server, over its own routes."""
    with server.client(headers={"Authorization": f"Bearer {server.initial_key}"}) as client:
        reply = client.post("/vision-events/use-cases", json={"name": "bench line"})
        reply.raise_for_status()
        use_case = str(reply.json()["id"])
        reply = client.post("/vision-events/upload", files={"file": ("part.png", _png(), "image/png")})
        reply.raise_for_status()
        return use_case, str(reply.json()["sourceId"])


@dataclass(slots=True)
class CreateResult:
    per_second: list[float]
    mean: float
    p50_ms: float
    p99_ms: float
    requests: int
    non_201: dict[int, int]
    errors: list[str]
    acked: int
    stored: int
    server_cpu_us_per_event: float
    load: tuple[float, float]
    reads: list[tuple[float, str, int, float]]  # (second of the run, read, status, ms), with --reads


# What the dashboard asks while the plant writes (`--reads`): the overview's figures, and a
# custom-metadata field and the use case as group-bys over the last 24 hours.
_READS: tuple[tuple[str, str, dict[str, str]], ...] = (
    ("stats", "/api/v1/default/stats", {}),
    ("stats group_by=meta.line", "/api/v1/default/stats", {"group_by": "meta.line"}),
    ("groups group_by=meta.ve.use_case", "/api/v1/default/groups", {"group_by": "meta.ve.use_case"}),
)


def _read_while(server: Server, every_s: float, stop: threading.Event,
                out: list[tuple[float, str, int, float]]) -> None:
    """Every `every_s`, each of `_READS` in turn, timed, until `stop`."""
    started = time.monotonic()
    with server.client(headers={"Authorization": f"Bearer {server.initial_key}"}, timeout=600) as client:
        while not stop.wait(every_s):
            end = datetime.now(UTC)
            window = {"from": _iso(end - timedelta(hours=24)), "to": _iso(end)}
            for label, path, params in _READS:
                at = time.monotonic()
                status = client.get(path, params={**window, **params}).status_code
                out.append((at - started, label, status, (time.monotonic() - at) * 1000))


def run_create(seconds: float, connections: int, processes: int, src: Path | None,
               read_every_s: float | None = None) -> CreateResult:
    tmp = Path(tempfile.mkdtemp(prefix="inferwatch-bench-ve-"))
    url = f"duckdb://{(tmp / 'data').resolve() / 'inferwatch.duckdb'}"
    server = Server(tmp / "data", "--store", url, env=_env(src)).start()
    load_before = os.getloadavg()[0]
    reads: list[tuple[float, str, int, float]] = []
    stop = threading.Event()
    reader: threading.Thread | None = None
    try:
        use_case, source_id = setup_use_case(server)
        body = template_body(use_case, source_id)
        load = Load("/vision-events/batch", 201, b'"created":%d' % BATCH, BATCH)
        if read_every_s is not None:
            reader = threading.Thread(target=_read_while, args=(server, read_every_s, stop, reads), daemon=True)
            reader.start()
        reports, start_at, stop_at, server_cpu = drive(server, server.initial_key, body, load, seconds, connections,
                                                       processes)
    finally:
        stop.set()
        if reader is not None:
            reader.join()
        server.stop()
    load_after = os.getloadavg()[0]
    counted = tally(reports, start_at, stop_at, seconds)
    acked = counted.acked
    store = open_store(url)
    try:
        stored = sum(f.events for f in store.use_case_figures(1).values())
    finally:
        store.close()
    if stored == acked:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"  (data directory kept for inspection: {tmp})")
    return CreateResult(counted.per_second, counted.in_window / seconds, _quantile(counted.latency, 0.5) * 1000,
                        _quantile(counted.latency, 0.99) * 1000, len(counted.latency), counted.refused,
                        [e for r in reports for e in r.errors][:10], acked, stored,
                        server_cpu / acked * 1e6 if acked else 0.0, (load_before, load_after), reads)


# -- query on a filled store ----------------------------------------------------------------------

GENERATOR_VERSION = 1
CHUNK = 250_000
SPAN = timedelta(days=30)
USE_CASE = "benchusecase00000001"

# Events i in [lo, hi): the rows `ingest/vision_events.to_rows` writes for an event of the create
# benchmark's shape (one image, three boxes; temperature 60.0-159.9, line, operator), spread over
# 30 days, event types in turn. `meta_types` as `_types` writes them.
_EVENTS = """
SELECT
    i,
    1::INTEGER AS ws,
    'ev-' || md5('ve' || i) AS event_id,
    ['quality_check', 'inventory_count', 'safety_alert', 'custom'][(i % 4)::INTEGER + 1] AS event_type,
    make_timestamp(($end_us - (($n - i)::HUGEINT * $span_us) // $n)::BIGINT) AS ts,
    'camera-' || (hash(i, 1) % 8) AS device_id,
    (60 + hash(i, 2) % 1000 / 10)::DECIMAL(4, 1)::DOUBLE AS temperature,
    'line-' || (hash(i, 3) % 3) AS line,
    'op-' || (hash(i, 4) % 5) AS operator
FROM range($lo, $hi) t(i)
"""

_EVENT_ROWS = """
SELECT ws, event_id, $use_case AS use_case_id, event_type, ts, ts + INTERVAL 1 SECOND AS received_at, device_id,
    NULL::VARCHAR AS stream_id, NULL::VARCHAR AS workflow_id, NULL::VARCHAR AS external_id, 1 AS n_images,
    ['string:line', 'number:temperature', 'string:operator'] AS meta_types, []::VARCHAR[] AS image_meta_types,
    json_object('eventId', event_id, 'eventType', event_type, 'useCaseId', $use_case,
        'timestamp', strftime(ts, '%Y-%m-%dT%H:%M:%S.%f+00:00'), 'deviceId', device_id,
        'images', [json_object('sourceId', $source, 'objectDetections', [
            json_object('class', 'scratch', 'x', 100.5, 'y', 80.25, 'width', 40.0, 'height', 90.0, 'confidence', 0.71),
            json_object('class', 'dent', 'x', 107.5, 'y', 93.25, 'width', 41.0, 'height', 91.0, 'confidence', 0.52),
            json_object('class', 'burn', 'x', 114.5, 'y', 106.25, 'width', 42.0, 'height', 92.0, 'confidence', 0.9)])],
        'customMetadata', json_object('temperature', temperature, 'line', line, 'operator', operator))::VARCHAR AS body,
    MAP {'line': line, 'operator': operator, 'temperature': temperature::VARCHAR} AS field_values,
    MAP {'temperature': temperature} AS field_numbers
FROM gen
"""

_INFERENCES = """
SELECT ws, event_id AS inference_id, 0::INTEGER AS image_index, ts, ts + INTERVAL 1 SECOND AS received_at,
    'vision-events/' || $use_case AS model_id, 'object-detection' AS task, device_id, []::VARCHAR[] AS tags,
    'vision-events' AS source, NULL::DOUBLE AS inference_time, 640 AS image_width, 480 AS image_height,
    list_transform(range(3), lambda j: {
        'class': ['scratch', 'dent', 'burn'][j + 1], 'class_id': NULL,
        'confidence': round(0.3 + (hash(i, j, 5) % 700) / 1000.0, 3),
        'x': (hash(i, j, 6) % 640)::DOUBLE, 'y': (hash(i, j, 7) % 480)::DOUBLE,
        'width': 20.0 + hash(i, j, 8) % 100, 'height': 20.0 + hash(i, j, 9) % 100,
        'detection_id': NULL, 'points': NULL, 'keypoints': NULL})::PREDICTION[] AS predictions,
    '{"source_id":"' || $source || '"}' AS extra
FROM gen
"""

_METADATA = """
SELECT ws, event_id AS inference_id, name AS field_name,
    CASE name WHEN 'temperature' THEN temperature::VARCHAR WHEN 'line' THEN line WHEN 'operator' THEN operator
         WHEN 've.use_case' THEN $use_case ELSE event_type END AS field_value,
    ts + INTERVAL 1 SECOND AS updated_at,
    CASE WHEN name = 'temperature' THEN 'number' ELSE 'string' END AS field_type,
    CASE WHEN name = 'temperature' THEN temperature END AS field_number
FROM gen, (VALUES ('temperature'), ('line'), ('operator'), ('ve.use_case'), ('ve.event_type')) names(name)
"""


def fill(data_dir: Path, n: int) -> int:
    """A store of `n` events of one use case; returns the newest event's time (µs)."""
    if data_dir.exists():
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    store = DuckDBStore(str(data_dir / "inferwatch.duckdb"))
    end_us = (time.time_ns() // 60_000_000_000) * 60_000_000
    try:
        store.migrate()
        bootstrap.ensure_workspace(Settings(data_dir=data_dir), store)
        now = datetime.now(UTC).replace(tzinfo=None)
        store.put_use_case(UseCaseRecord(1, USE_CASE, "bench line", ACTIVE, now, now))
        con = store._db.cursor()
        inferences = _INFERENCES.replace("PREDICTION[]", schema.PREDICTION + "[]")
        source = "0" * 64
        started = time.perf_counter()
        for lo in range(0, n, CHUNK):
            hi = min(n, lo + CHUNK)
            gen = con.sql(_EVENTS, params={"lo": lo, "hi": hi, "n": n, "end_us": end_us,
                                           "span_us": SPAN // timedelta(microseconds=1)}).to_arrow_table()
            con.register("gen", gen)
            common = {"use_case": USE_CASE, "source": source}
            con.register("event_batch", con.execute(_EVENT_ROWS, common).to_arrow_table())
            con.register("batch", con.execute(inferences, common).to_arrow_table())
            con.register("meta_batch", con.execute(_METADATA, {"use_case": USE_CASE}).to_arrow_table())
            con.execute("BEGIN")
            con.execute(schema.INSERT_NEW_INFERENCES)
            con.execute(schema.UPSERT_METADATA)
            con.execute("INSERT OR REPLACE INTO events BY NAME SELECT * FROM event_batch")
            con.execute("COMMIT")
            for name in ("gen", "event_batch", "batch", "meta_batch"):
                con.unregister(name)
            print(f"\r  filled {hi:,} of {n:,} events ({hi / (time.perf_counter() - started):,.0f}/s)", end="",
                  flush=True)
        print()
        con.execute("CHECKPOINT")
    finally:
        store.close()
    return end_us


def cached_fill(cache_dir: Path, n: int) -> Path:
    data_dir = cache_dir / f"vision-events-{n}" / "data"
    stamp = data_dir.parent / "fill.json"
    wanted = {"generator": GENERATOR_VERSION, "events": n}
    if stamp.exists() and (data_dir / "inferwatch.duckdb").exists():
        saved = json.loads(stamp.read_text())
        if {k: saved.get(k) for k in wanted} == wanted:
            print(f"store: reusing {data_dir} (filled {saved['filled_at']} in {saved['seconds']:.0f} s)")
            return data_dir
    print(f"store: filling {data_dir} with {n:,} events")
    stamp.unlink(missing_ok=True)
    started = time.perf_counter()
    fill(data_dir, n)
    took = time.perf_counter() - started
    print(f"  took {took:.0f} s")
    stamp.write_text(json.dumps({**wanted, "seconds": took, "filled_at": datetime.now(UTC).isoformat()}))
    return data_dir


def queries() -> list[tuple[str, dict[str, Any]]]:
    """(label, body) of the timed queries; the first is the issue's."""
    temp_gt = {"field": "temperature", "operator": "gt", "value": 150, "type": "number"}
    return [
        ("temperature gt 150 + eventType", {"eventType": "quality_check", "customMetadataFilters": [temp_gt]}),
        ("temperature 100..100.5 + eventType", {"eventType": "safety_alert", "customMetadataFilters": [
            {"field": "temperature", "operator": "gte", "value": 100, "type": "number"},
            {"field": "temperature", "operator": "lt", "value": 100.5, "type": "number"}]}),
        ("temperature gt 159.8 (rare)", {"customMetadataFilters": [
            {"field": "temperature", "operator": "gt", "value": 159.8, "type": "number"}]}),
        ("eventType only", {"eventType": "custom"}),
        ("no filter (newest page)", {}),
        ("line eq + temperature gt 150", {"customMetadataFilters": [
            {"field": "line", "operator": "eq", "value": "line-1"}, temp_gt]}),
        ("deviceId eq + eventType",
         {"eventType": "quality_check", "deviceId": {"operator": "eq", "value": "camera-3"}}),
        ("detection class + confidence", {"detection": {"classes": ["burn"], "minConfidence": 0.95}}),
    ]


@dataclass(frozen=True)
class QueryTiming:
    label: str
    wall_ms: float
    cpu_ms: float
    found: int
    status: int


def run_query(data_dir: Path, runs: int, src: Path | None) -> tuple[list[QueryTiming], tuple[float, float]]:
    server = Server(data_dir, env=_env(src)).start(timeout=1800)
    load_before = os.getloadavg()[0]
    results: list[QueryTiming] = []
    try:
        pid = server.pid
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {server.initial_key}"},
                          timeout=600) as client:
            for label, extra in queries():
                body = {"useCaseId": USE_CASE, "limit": 50, **extra}
                reply = client.post("/vision-events/query", json=body)
                walls, cpus = [], []
                for _ in range(runs):
                    before = cpu_ms(pid)
                    started = time.perf_counter()
                    reply = client.post("/vision-events/query", json=body)
                    walls.append((time.perf_counter() - started) * 1000)
                    cpus.append(cpu_ms(pid) - before)
                found = len(reply.json().get("events", [])) if reply.status_code == 200 else 0
                timing = QueryTiming(label, statistics.median(walls), statistics.median(cpus), found, reply.status_code)
                results.append(timing)
                print(f"  {label:<40} {timing.wall_ms:>8.1f} ms wall {timing.cpu_ms:>8.1f} ms CPU  {found} events"
                      f"{'' if reply.status_code == 200 else f'  HTTP {reply.status_code}: {reply.text[:200]}'}",
                      flush=True)
    finally:
        server.stop()
    return results, (load_before, os.getloadavg()[0])


# -- report ---------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window of batch create (after a warm-up)")
    parser.add_argument("--connections", type=int, default=64,
                        help="keep-alive connections in total: one per edge device of a plant")
    parser.add_argument("--processes", type=int, default=4, help="load-generator processes")
    parser.add_argument("--events", type=int, default=5_000_000, help="events in the query benchmark's store")
    parser.add_argument("--runs", type=int, default=9, help="timed runs of each query (after one warm-up)")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".bench-cache")
    parser.add_argument("--only", choices=("create", "query"), default=None)
    parser.add_argument("--target-ms", type=float, default=100.0)
    parser.add_argument("--src", type=Path, default=None, help="run the server from this source tree")
    parser.add_argument("--reads", type=float, default=None, metavar="SECONDS",
                        help="during batch create, time three dashboard reads every SECONDS (their CPU is the"
                             " server's too, so the events/s of such a run are not the ingest figure)")
    args = parser.parse_args(argv)
    if args.connections < 1 or args.processes < 1 or args.seconds <= 0 or args.events < 1 or args.runs < 1:
        parser.error("--connections, --processes, --seconds, --events and --runs must be positive")

    lines: list[str] = []
    ok = True
    if args.only in (None, "create"):
        print(f"batch create: {args.connections} connections in {args.processes} processes, {BATCH} events a request,"
              f" {WARMUP_S:.0f} s warm-up + {args.seconds:.0f} s measured", flush=True)
        c = run_create(args.seconds, args.connections, args.processes, args.src, args.reads)
        for e in c.errors:
            print(f"  error: {e}")
        ok = c.stored == c.acked > 0 and not c.non_201
        lines += [
            f"batch create ({args.connections} connections in {args.processes} processes, {BATCH} events x 1 image"
            f" x 3 detections a request; load average {c.load[0]:.1f} -> {c.load[1]:.1f})",
            f"  sustained          {statistics.median(c.per_second):>10,.0f} events/s (median of 1 s windows;"
            f" mean {c.mean:,.0f})",
            f"  per second         {', '.join(f'{x:,.0f}' for x in c.per_second)}",
            f"  request latency    p50 {c.p50_ms:.1f} ms, p99 {c.p99_ms:.1f} ms; {c.requests:,} requests;"
            f" non-201: {sum(c.non_201.values())} {c.non_201 or ''}",
            f"  server CPU         {c.server_cpu_us_per_event:.1f} us per acknowledged event (all threads)",
            f"  stored check       {c.stored:,} events == {c.acked:,} acknowledged: {'OK' if ok else 'MISMATCH'}",
        ]
        for label, _, _ in _READS if c.reads else ():
            mine = [r for r in c.reads if r[1] == label]
            lines.append(f"  read {label:<32} {', '.join(f'{ms:,.0f}' for _, _, _, ms in mine)} ms"
                         f" (at {', '.join(f'{at:.0f}' for at, _, _, _ in mine)} s)")
            ok = ok and all(status == 200 for _, _, status, _ in mine)
    if args.only in (None, "query"):
        data_dir = cached_fill(args.cache_dir, args.events)
        print(f"query: median of {args.runs} runs after a warm-up, 50 events a page, over loopback", flush=True)
        results, load = run_query(data_dir, args.runs, args.src)
        failed = [r for r in results if r.status != 200]
        ok = ok and not failed
        lines.append(f"query on {args.events:,} events (median of {args.runs} runs, 50 a page; load average"
                     f" {load[0]:.1f} -> {load[1]:.1f})")
        lines += [f"  {r.label:<40} {r.wall_ms:>8.1f} ms wall {r.cpu_ms:>8.1f} ms CPU"
                  f"{'' if r.status == 200 else f'  HTTP {r.status}'}" for r in results]
        lines.append(f"  over {args.target_ms:.0f} ms: {sum(r.wall_ms > args.target_ms for r in results)}")
    print()
    print("```")
    print(f"inferwatch Vision Events benchmark, duckdb store, {os.cpu_count()} cores, loopback")
    print("\n".join(lines))
    print("```")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
