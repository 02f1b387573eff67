"""Both backends side by side on the same big data: the copy into ClickHouse, then every read.

Run from the repository root, after `bench/dashboard.py` has filled its cached store (and with no
server running on it):

    .venv/bin/python bench/stores.py [--source .bench-cache/dashboard-5000000/data/inferwatch.duckdb]

1. Copies the DuckDB store into a chdb store beside it with `inferwatch migrate`'s own code
   (once; a finished copy is reused) and prints the copy's rate.
2. Opens both and calls the `Store` reads behind the dashboard and the stats API, each a few
   times after a warm-up, in this process (no HTTP), and prints the median time of each on
   DuckDB and on ClickHouse's engine (chdb), and how large each store is on disk.
3. Compares the two stores' answers to every call as the parity tests do (`same` in
   `tests/unit/test_store_parity.py`: equal, the quantiles read from per-hour buckets within
   their stated bound) and prints where one differs; any difference fails the run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "src") not in sys.path:
    sys.path.append(str(ROOT / "src"))

from tests.unit.test_store_parity import same  # noqa: E402

from inferwatch.query.filters import Filters, MetaTerm  # noqa: E402
from inferwatch.query.performance import DEFAULT_BINS, GroundTruth, report  # noqa: E402
from inferwatch.store.base import Store  # noqa: E402
from inferwatch.store.clickhouse import ClickHouseStore  # noqa: E402
from inferwatch.store.clickhouse.importer import ImportTarget, copy_store, open_source  # noqa: E402
from inferwatch.store.duckdb import DuckDBStore  # noqa: E402


def _size(path: Path) -> int:
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def copy_once(source: Path, target: Path) -> ClickHouseStore:
    store = ClickHouseStore.from_url(f"chdb://{target}")
    store.migrate()
    if ImportTarget(store).position(str(source), "done") is None:
        con = open_source(str(source))
        try:
            started = time.perf_counter()
            last = [0.0]

            def progress(done: int, total: int) -> None:
                if time.perf_counter() - last[0] > 1:
                    last[0] = time.perf_counter()
                    print(f"\r  copied {done:,} of {total:,}", end="", flush=True)

            copied = copy_store(con, str(source), store, progress=progress)
            took = time.perf_counter() - started
        finally:
            con.close()
        print(f"\r  copied {copied.inferences:,} inferences and {copied.metadata:,} metadata values in {took:.0f} s"
              f" ({copied.inferences / took:,.0f} inferences/s with their metadata)")
    else:
        print(f"  reusing the copy in {target}")
    return store


def calls(store: Store, ws: int) -> list[tuple[str, Callable[[], Any]]]:
    (newest,) = [row.timestamp for row in store.list_inferences(ws, Filters(), None, 1)[0]]
    end = newest.replace(tzinfo=UTC) + timedelta(seconds=1)
    start = end - timedelta(days=1)
    day, week = Filters(start=start, end=end), Filters(start=end - timedelta(days=7), end=end)
    month = Filters(start=end - timedelta(days=30), end=end)
    meta = Filters(start=end - timedelta(days=7), end=end, meta=(MetaTerm.equal("inspection", "failed"),))
    mexico = Filters(start=end - timedelta(days=30), end=end, meta=(MetaTerm.equal("factory", "mexico"),))
    hour = timedelta(hours=1)
    # Measured accuracy of the model whose inferences carry labels (`expected`) and pass/fail values.
    labelled = Filters(start=month.start, end=end, model_ids=("label-check/2",))
    truth = GroundTruth(label_field="expected", pass_field="inspection")
    return [
        ("totals, 24 h", lambda: store.totals(ws, day)),
        ("totals, 7 days", lambda: store.totals(ws, week)),
        ("totals, 30 days", lambda: store.totals(ws, month)),
        ("totals, all 35 days", lambda: store.totals(ws, Filters())),
        ("series 7 d by hour", lambda: store.series(ws, week, hour, None)),
        ("series 7 d by hour, per model", lambda: store.series(ws, week, hour, "model_id")),
        ("series 30 d by 6 hours, per device", lambda: store.series(ws, month, 6 * hour, "device_id")),
        ("series 7 d by hour, per class", lambda: store.series(ws, week, hour, "class")),
        ("series 7 d by hour, per meta.factory", lambda: store.series(ws, week, hour, "meta.factory")),
        ("list, first page of 50", lambda: store.list_inferences(ws, Filters(), None, 50)),
        ("list, 50 with meta.inspection=failed", lambda: store.list_inferences(ws, meta, None, 50)),
        ("list, 50 with meta.factory=mexico", lambda: store.list_inferences(ws, Filters(meta=mexico.meta), None, 50)),
        ("totals, 30 d, meta.factory=mexico", lambda: store.totals(ws, mexico)),
        ("series 30 d by day, meta.factory=mexico", lambda: store.series(ws, mexico, timedelta(days=1), None)),
        ("class stats, 24 h (Roboflow stats)", lambda: store.class_stats(ws, start, end, ())),
        ("devices", lambda: store.devices(ws, start, end)),
        ("metadata fields", lambda: store.metadata_fields(ws, 10)),
        ("models, 7 d", lambda: store.models(ws, week)),
        ("distributions, 7 d", lambda: store.distributions(ws, week, 20)),
        ("group table by device, 7 d", lambda: store.group_table(ws, week, "device_id")),
        ("group table by meta.factory, 7 d", lambda: store.group_table(ws, week, "meta.factory")),
        ("numeric temperature, 30 d by day and meta.factory", lambda: store.numeric_figures_and_whole(
            ws, month, "temperature", "meta.factory", timedelta(days=1))),
        # As the API reports them (`same` compares its floats to 12 digits).
        ("measured accuracy, 30 d by day", lambda: report(store.performance_counts(
            ws, labelled, truth, timedelta(days=1), None, DEFAULT_BINS), truth, DEFAULT_BINS)),
        ("measured accuracy, 30 d by meta.factory", lambda: report(store.performance_counts(
            ws, labelled, truth, timedelta(days=1), "factory", DEFAULT_BINS), truth, DEFAULT_BINS)),
    ]


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The median ms of `runs` calls after a warm-up, and the answer."""
    answer = fn()  # warm-up
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000, answer


def differs(duck: Any, chdb: Any, label: str) -> str:
    """Where the two answers differ (the first place), or "" when they agree."""
    try:
        same(duck, chdb, label)
    except AssertionError as exc:
        return str(exc).splitlines()[0][:160]
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path,
                        default=ROOT / ".bench-cache" / "dashboard-5000000" / "data" / "inferwatch.duckdb")
    parser.add_argument("--target", type=Path, default=None, help="the chdb folder (default: beside the source)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    source: Path = args.source.resolve()
    target: Path = (args.target or source.parent.parent / "chdb").resolve()
    print(f"source {source} ({_size(source) / 1e9:.2f} GB)")
    chdb = copy_once(source, target)
    duck = DuckDBStore(str(source))
    duck.migrate()
    try:
        results = []
        for (label, on_duck), (_, on_chdb) in zip(calls(duck, 1), calls(chdb, 1), strict=True):
            (d, a), (c, b) = timed(on_duck, args.runs), timed(on_chdb, args.runs)
            results.append((label, d, c, differs(a, b, label)))
            print(f"  {label:<40} {d:>9.1f} {c:>9.1f}  {results[-1][3] or 'same answer'}", flush=True)
    finally:
        duck.close()
        chdb.close()
    print()
    print("```")
    print(f"inferwatch store reads, {source.parent.parent.name}: median of {args.runs} runs after a warm-up, ms,"
          " in-process (no HTTP)")
    print(f"  {'read':<40} {'DuckDB':>9} {'chdb':>9}  answers")
    for label, d, c, diff in results:
        print(f"  {label:<40} {d:>9.1f} {c:>9.1f}  {diff or 'same'}")
    print(f"  {'on disk, GB':<40} {_size(source) / 1e9:>9.2f} {_size(target) / 1e9:>9.2f}")
    print("```")
    return 1 if any(diff for *_, diff in results) else 0


if __name__ == "__main__":
    sys.exit(main())
