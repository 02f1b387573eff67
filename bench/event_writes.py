"""What the DuckDB writer spends on Vision Events, statement by statement, in one process.

Run from the repository root:

    .venv/bin/python bench/event_writes.py [--events 480000] [--requests 16] [--checkpoint-threshold 256MiB]

Makes the rows of `bench/vision_events.py`'s batch (100 events a request, each with one image,
three detections and three custom-metadata values) with the project's own decoding and
`to_rows`, merges `--requests` requests into one write as the writer does under load, and writes
them into a fresh store with the statements of `add_new_events`, each timed: the Arrow tables
(which each request now makes itself, `EventTables.of`, before the writer runs the statements as
one script), each INSERT, and COMMIT, where DuckDB also checkpoints once the WAL passes the
threshold. DuckDB keeps its own thread count here (the server's writer sets one thread while it
is busy, `Store.ingesting`). Prints
the microseconds an event of each, and every commit over 100 ms (the checkpoints) with when it
came. `--checkpoint-threshold` overrides the store's setting (`store/duckdb/schema.py`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
for path in (str(ROOT), str(ROOT / "src"), str(ROOT / "bench")):
    if path not in sys.path:
        sys.path.append(path)

from inferwatch.ingest import vision_events as ingest_events  # noqa: E402
from inferwatch.ingest.rows import InferenceRows, MetadataRows  # noqa: E402
from inferwatch.store.duckdb import DuckDBStore, schema  # noqa: E402
from inferwatch.store.events import EventRows  # noqa: E402
from ingest import PLACEHOLDER  # noqa: E402
from vision_events import template_body  # noqa: E402

SOURCE = "a" * 64  # the image every event names


def merged_write(first: int, requests: int, ws: int) -> tuple[InferenceRows, MetadataRows, EventRows]:
    """`requests` batches' rows as one write, their event ids numbered from batch `first`."""
    body = template_body("uc", SOURCE)
    rows, meta, events = InferenceRows(), MetadataRows(), EventRows()
    now = datetime.now(UTC)
    for k in range(first, first + requests):
        prepared = ingest_events.decode_batch(body.replace(PLACEHOLDER, b"%08d" % k), now)
        r, m, e = ingest_events.to_rows([(p, "uc") for p in prepared], ws, {SOURCE: ingest_events.Size(640, 480)},
                                        time.time_ns() // 1000)
        rows.extend(r)
        meta.extend(m)
        events.extend(e)
    return rows, meta, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=480_000)
    parser.add_argument("--requests", type=int, default=16, help="requests of 100 events merged into one write")
    parser.add_argument("--checkpoint-threshold", default=None)
    args = parser.parse_args()
    if args.checkpoint_threshold:
        schema.CONFIG["checkpoint_threshold"] = args.checkpoint_threshold
    store = DuckDBStore(str(Path(tempfile.mkdtemp(prefix="inferwatch-bench-writes-")) / "store.duckdb"))
    store.migrate()
    ws = store.create_workspace("bench", "-").id
    con = store._cursor()
    statements = (("INSERT events", "INSERT INTO events BY NAME SELECT * FROM event_batch"),
                  ("INSERT inferences", schema.INSERT_NEW_INFERENCES),
                  ("INSERT metadata", schema.INSERT_NEW_METADATA),
                  ("metadata_changed", schema.NOTE_METADATA_CHANGED))
    spent = dict.fromkeys(["Arrow tables", *(name for name, _ in statements), "COMMIT"], 0.0)
    slow: list[tuple[int, float]] = []
    per_write = args.requests * ingest_events.MAX_BATCH
    writes = max(args.events // per_write, 1)
    for w in range(writes):
        rows, meta, events = merged_write(w * args.requests, args.requests, ws)
        started = time.perf_counter()
        event_batch, batch, meta_batch = events.to_arrow(), rows.to_arrow(), meta.to_arrow()  # noqa: F841 (read by name)
        spent["Arrow tables"] += time.perf_counter() - started
        con.execute("BEGIN")
        for name, sql in statements:
            started = time.perf_counter()
            con.execute(sql)
            spent[name] += time.perf_counter() - started
        started = time.perf_counter()
        con.execute("COMMIT")
        took = time.perf_counter() - started
        spent["COMMIT"] += took
        if took > 0.1:
            slow.append(((w + 1) * per_write, took))
    total = writes * per_write
    print(f"{total:,} events, {per_write:,} a write, checkpoint threshold {schema.CONFIG['checkpoint_threshold']}")
    for name, seconds in spent.items():
        print(f"  {name:<18} {seconds * 1e6 / total:6.1f} us an event")
    print(f"  {'all':<18} {sum(spent.values()) * 1e6 / total:6.1f} us an event")
    print("  commits over 100 ms (events written by then: ms): "
          + ", ".join(f"{at:,}: {took * 1000:.0f}" for at, took in slow))
    store.close()


if __name__ == "__main__":
    main()
