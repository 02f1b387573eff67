"""The ClickHouse store's per-hour summaries (an aggregate projection, schema migration 12, and the
per-class sums the reads make, migration 14) answer as a full scan does, and keep doing so through
every way the inferences change: new rows in hours already summed, re-sent rows, a retention
sweep, a merge, rows deleted by a mutation, and a reopened store. The scan is the DuckDB store
without its caches, given the same rows; that the engine really read the projection, not the rows,
is asked of its query plan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.distributions import DEFAULT_BINS
from inferwatch.query.filters import Filters
from inferwatch.store.base import Store
from inferwatch.store.clickhouse import ClickHouseStore, summaries
from inferwatch.store.clickhouse.sql import Params
from inferwatch.store.duckdb import DuckDBStore
from inferwatch.store.hours import summed_hours
from tests.unit.test_rollup import BASE, END, ONE_DEVICE, START, WINDOW, rows
from tests.unit.test_store_parity import same

pytestmark = pytest.mark.slow

MODELS = Filters(start=START, end=END, model_ids=("m/2",))
# A window on whole hours at both ends: no partial hour read from the rows.
WHOLE = Filters(start=BASE + timedelta(hours=2), end=BASE + timedelta(hours=8))
CLASSES = Filters(start=START, end=END, classes=("a", "c"))


def answers(store: Store) -> list[Any]:
    return [store.totals(1, f) for f in (WINDOW, ONE_DEVICE, MODELS, WHOLE)] + [
        store.models(1, f) for f in (WINDOW, ONE_DEVICE, WHOLE)] + [
        store.group_table(1, f, g) for f in (WINDOW, ONE_DEVICE, MODELS, WHOLE) for g in ("model_id", "device_id")] + [
        store.series(1, f, bucket, group_by)
        for f in (WINDOW, ONE_DEVICE, MODELS, WHOLE)
        for bucket in (timedelta(hours=1), timedelta(hours=3), timedelta(days=1))
        for group_by in (None, "model_id", "device_id", "class")] + [
        store.class_stats(1, start, end, models) for start, end, models in (
            (START, END, ()), (START, END, ("m/2",)), (BASE + timedelta(hours=2), BASE + timedelta(hours=8), ()))] + [
        store.distributions(1, f, DEFAULT_BINS) for f in (WINDOW, MODELS, WHOLE, CLASSES)] + [
        store.series(1, CLASSES, timedelta(hours=1), "class")]


def plan(store: ClickHouseStore, sql: Callable[[Params], str]) -> str:
    p = Params()
    text = sql(p)
    return "\n".join(str(line) for (line,) in store._rows(f"EXPLAIN projections = 1 {text}", p))


def read_from_summaries(store: ClickHouseStore) -> None:
    """The whole hours were read from the projection."""
    hours = summed_hours(WINDOW)
    assert hours is not None
    read = plan(store, lambda p: f"SELECT * FROM {summaries.summed(1, WINDOW, hours, p)}")
    assert "ReadFromMergeTree (hour_sums)" in read


def test_summaries_answer_as_the_scan_through_every_change(tmp_path: Path, chdb_url: Callable[[str], str]) -> None:
    url = chdb_url("summaries")
    house = ClickHouseStore.from_url(url)
    house.migrate()
    scan = DuckDBStore(str(tmp_path / "scan.duckdb"), caches=False)
    scan.migrate()
    both: list[Store] = [house, scan]

    def append(batch: InferenceRows) -> None:
        assert len({s.append(batch, MetadataRows()) for s in both}) == 1

    for s in both:
        s.create_workspace("w", "h")
    append(rows(1, 3000, 10, "first"))
    first = answers(house)
    assert first[0].inferences > 0 and first[0].p50_inference_time is not None
    read_from_summaries(house)
    same(first, answers(scan))

    # New rows in hours already summed, and a batch re-sending some of them.
    append(rows(2, 500, 10, "second"))
    again = rows(2, 200, 10, "second")
    again.extend(rows(3, 100, 10, "third"))
    append(again)
    changed = answers(house)
    assert changed != first
    same(changed, answers(scan))

    # A making of the per-class sums cut short after its rows, before its checks: the rows of a
    # stamp no check names are not read.
    for table in ("class_hours", "class_bins"):
        house._command(f"INSERT INTO {table} SELECT * REPLACE (now64(6) AS made_at) FROM {table}", {})
    same(answers(house), changed)

    # A merge of every part into one, then a sweep of the first hours (a mutation on both).
    house._command("OPTIMIZE TABLE inferences FINAL", {})
    same(answers(house), changed)
    for s in both:
        assert s.sweep(1, (BASE + timedelta(hours=3, minutes=30)).replace(tzinfo=None), None, None).inferences > 0
    swept = answers(house)
    assert swept != changed
    read_from_summaries(house)
    same(swept, answers(scan))

    # Rows deleted by a mutation of their own (as another replica's sweep would), then the
    # store opened again.
    house._command("ALTER TABLE inferences DELETE WHERE inference_id LIKE 'first-1%' SETTINGS mutations_sync = 1", {})
    scan._cursor().execute("DELETE FROM inferences WHERE inference_id LIKE 'first-1%'")
    house.close()
    house = ClickHouseStore.from_url(url)
    both[0] = house
    reopened = answers(house)
    assert reopened != swept
    same(reopened, answers(scan))
    append(rows(4, 300, 10, "fourth"))
    read_from_summaries(house)
    same(answers(house), answers(scan))
    house.close()
    scan.close()

