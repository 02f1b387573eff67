"""The ClickHouse store's per-hour summaries (an aggregate projection, schema migration 12, and the
per-class sums the reads make, migration 14) answer as a full scan does, and keep doing so through
every way the inferences change: new rows in hours already summed, re-sent rows, a retention
sweep, a merge, rows deleted by a mutation, and a reopened store. The scan is the DuckDB store
without its caches, given the same rows; that the engine really read the projection, not the rows,
is asked of its query plan."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from inferwatch.ingest.metavalues import MetaScalar
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.distributions import HISTOGRAM_BINS
from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.query.performance import DEFAULT_BINS, GroundTruth, report
from inferwatch.store.base import Store
from inferwatch.store.clickhouse import ClickHouseStore, made, summaries
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
        store.distributions(1, f, HISTOGRAM_BINS) for f in (WINDOW, MODELS, WHOLE, CLASSES)] + [
        store.series(1, CLASSES, timedelta(hours=1), "class")]


def plan(store: ClickHouseStore, sql: Callable[[Params], str]) -> str:
    p = Params()
    text = sql(p)
    return "\n".join(str(line) for (line,) in store._rows(f"EXPLAIN projections = 1 {text}", p))


def read_from_summaries(store: ClickHouseStore) -> None:
    """The whole hours were read from the projection, by hour or not."""
    hours = summed_hours(WINDOW)
    assert hours is not None

    def whole(hourly: bool) -> Callable[[Params], str]:
        return lambda p: f"SELECT * FROM {summaries.summed(1, WINDOW, hours, p, hourly=hourly)}"

    for hourly in (True, False):
        assert "ReadFromMergeTree (hour_sums)" in plan(store, whole(hourly))


def compared(tmp_path: Path, url: str) -> tuple[ClickHouseStore, DuckDBStore]:
    """The ClickHouse store at `url` and the scan it is compared with, each with workspace 1."""
    house = ClickHouseStore.from_url(url)
    house.migrate()
    scan = DuckDBStore(str(tmp_path / "scan.duckdb"), caches=False)
    scan.migrate()
    for s in (house, scan):
        s.create_workspace("w", "h")
    return house, scan


def append_to(both: list[Store], batch: InferenceRows, meta: MetadataRows) -> None:
    """The same batch into both stores, each storing the same number of new inferences."""
    assert len({s.append(batch, meta) for s in both}) == 1


def test_summaries_answer_as_the_scan_through_every_change(tmp_path: Path, chdb_url: Callable[[str], str]) -> None:
    url = chdb_url("summaries")
    house, scan = compared(tmp_path, url)
    both: list[Store] = [house, scan]

    def append(batch: InferenceRows) -> None:
        append_to(both, batch, MetadataRows())

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


def made_hours(store: ClickHouseStore, before: datetime | None) -> int:
    """The rows of every table of made sums (of hours before `before`, if given)."""
    since = "" if before is None else f" WHERE hour < toStartOfHour(toDateTime64('{before.isoformat()}', 6, 'UTC'))"
    return sum(store._rows(f"SELECT count() FROM {table}{since}", {})[0][0] for table in made.TABLES)


def meta_answers(store: Store) -> list[Any]:
    lines = Filters(start=START, end=END, meta=(MetaTerm.equal("line", "a", "b"),))
    return [store.totals(1, lines), store.series(1, lines, timedelta(hours=1), None),
            store.series(1, lines, timedelta(hours=2), "model_id"), store.group_table(1, lines, "device_id")] + [
        store.series(1, f, timedelta(hours=1), "meta.line") for f in (WINDOW, MODELS, WHOLE)] + [
        store.group_table(1, f, "meta.line") for f in (WINDOW, ONE_DEVICE, WHOLE)] + [
        store.totals_and_series(1, WINDOW, timedelta(hours=3), "meta.line")] + [
        # Measured accuracy from the verdict sums (migration 16), the field both labels and
        # pass/fail values.
        report(store.performance_counts(1, f, LABELS, size, group, DEFAULT_BINS), LABELS, DEFAULT_BINS)
        for f in (WINDOW, ONE_DEVICE, MODELS) for size in (timedelta(hours=1), timedelta(days=1))
        for group in (None, "spot")] + [
        # A numeric field's figures by another field's values (migration 18).
        store.numeric_figures_and_whole(1, f, "temp", "meta.line", size)
        for f in (WINDOW, MODELS) for size in (None, timedelta(hours=2))]


LABELS = GroundTruth(label_field="line", label_map={"c": "none"}, pass_field="line", fail_values=["B"])


def test_value_sums_answer_as_the_scan_through_every_change(tmp_path: Path,
                                                            chdb_url: Callable[[str], str]) -> None:
    """The per-value sums, and the verdict and numeric sums made alike (migrations 15, 16 and
    18), through late metadata, replaced values, values given before their inference, a change
    of a grouping field alone, new inferences, a sweep and a reopened store."""
    url = chdb_url("value_sums")
    house, scan = compared(tmp_path, url)
    both: list[Store] = [house, scan]
    written = iter(range(10**9))

    def values(*triples: tuple[str, MetaScalar], field: str = "line") -> MetadataRows:
        out = MetadataRows()
        for inference_id, value in triples:
            out.add(1, inference_id, field, value, int(END.timestamp() * 10**6) + next(written))
        return out

    def append(batch: InferenceRows, meta: MetadataRows) -> None:
        append_to(both, batch, meta)

    append(rows(1, 3000, 10, "first"), values(*((f"first-{i}", "abc"[i % 3]) for i in range(0, 3000, 2))))
    # The grouping field of measured accuracy by group, and a numeric field figured by `line`.
    append(InferenceRows(), values(*((f"first-{i}", "xy"[i % 7 % 2]) for i in range(0, 3000, 3)), field="spot"))
    append(InferenceRows(), values(*((f"first-{i}", i % 50 / 4) for i in range(0, 3000, 5)), field="temp"))
    first = meta_answers(house)
    assert first[0].inferences > 0
    same(first, meta_answers(scan))

    # Late metadata for inferences of hours already made, values replaced, values for an
    # inference not stored yet, which then comes.
    append(InferenceRows(), values(*((f"first-{i}", "b") for i in range(1, 300, 2)),
                                   *((f"first-{i}", "c") for i in range(0, 600, 4)), ("second-7", "a")))
    late = meta_answers(house)
    assert late != first
    same(late, meta_answers(scan))
    # Only the grouping field changes, then only the numbers.
    append(InferenceRows(), values(*((f"first-{i}", "z") for i in range(0, 900, 9)), field="spot"))
    append(InferenceRows(), values(*((f"first-{i}", -1.5) for i in range(0, 900, 10)), field="temp"))
    regrouped = meta_answers(house)
    assert regrouped != late
    same(regrouped, meta_answers(scan))
    append(rows(2, 500, 10, "second"), MetadataRows())
    same(meta_answers(house), meta_answers(scan))

    # An inference whose two images lie in two hours: its metadata has no one time (NO_TIME),
    # and a value given it later changes both hours.
    two = rows(4, 2, 10, "two")
    two.inference_id[1], two.image_index[1] = "two-0", 1
    two.ts_us[0], two.ts_us[1] = (int((BASE + timedelta(hours=h, minutes=30)).timestamp() * 10**6) for h in (2, 6))
    append(two, values(("two-0", "a")))
    same(meta_answers(house), meta_answers(scan))
    append(InferenceRows(), values(("two-0", "c")))
    same(meta_answers(house), meta_answers(scan))

    # A making cut short after its rows: those rows are not read.
    for table in ("meta_hours", "meta_class_hours", "verdict_hours", "number_hours"):
        house._command(f"INSERT INTO {table} SELECT * REPLACE (now64(6) AS made_at) FROM {table}", {})
    same(meta_answers(house), meta_answers(scan))

    # A sweep of the first hours, then metadata deleted while the store was closed. The sweep
    # also deletes every made row and check of the hours wholly before its cut, and only those.
    cut = (BASE + timedelta(hours=3, minutes=30)).replace(tzinfo=None)
    assert made_hours(house, before=cut) > 0
    for s in both:
        assert s.sweep(1, cut, None, None).inferences > 0
    assert made_hours(house, before=cut) == 0
    assert made_hours(house, before=None) > 0
    swept = meta_answers(house)
    same(swept, meta_answers(scan))
    house.close()
    outside = ClickHouseStore.from_url(url)
    outside._command("ALTER TABLE metadata DELETE WHERE inference_id LIKE 'first-2%' SETTINGS mutations_sync = 1", {})
    outside.close()
    scan._cursor().execute("DELETE FROM metadata WHERE inference_id LIKE 'first-2%'")
    house = ClickHouseStore.from_url(url)
    both[0] = house
    reopened = meta_answers(house)
    assert reopened != swept
    same(reopened, meta_answers(scan))
    house.close()
    scan.close()
