"""The per-hour sums of the DuckDB store answer exactly as the full scan of the inferences, and
stay right through every way the inferences change: new rows in hours already summed, re-sent
rows, a retention sweep, and rows changed while no server held the file (found at start-up). So
do the copies of the inferences beside their metadata, through metadata written before, with
and after its inferences."""

from __future__ import annotations

import dataclasses
import itertools
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest

from inferwatch.ingest.metavalues import MetaScalar
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.distributions import HISTOGRAM_BINS
from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.query.performance import DEFAULT_BINS, FEEDBACK_FIELD, VERDICTS, GroundTruth, feedback_setting
from inferwatch.store.base import Totals
from inferwatch.store.duckdb import DuckDBStore
from tests.unit.test_store_parity import same

pytestmark = pytest.mark.slow  # every change, each checked against a full scan

BASE = datetime(2026, 5, 1, 6, 0, tzinfo=UTC)
HOUR_US = 3600 * 10**6
START, END = BASE + timedelta(minutes=20), BASE + timedelta(hours=9, minutes=10)
WINDOW = Filters(start=START, end=END)
ONE_MODEL = Filters(start=WINDOW.start, end=WINDOW.end, model_ids=("m/1",), classes=("a", "c"))
ONE_DEVICE = Filters(start=WINDOW.start, end=WINDOW.end, model_ids=("m/2",), device_ids=("cam-2",))
# Typed metadata compared: a range, and a number that differs, on top of a window.
WARM = Filters(start=WINDOW.start, end=WINDOW.end,
               meta=(MetaTerm("temp", bounds=((">=", 40.0), ("<", 120.5))), MetaTerm("line", not_texts=("l1",))))


# A metadata value among the filters: read from the copies of that value (`cache/meta_filter.py`),
# alone and beside other terms, metadata ones included.
LINES = Filters(start=START, end=END, meta=(MetaTerm.equal("line", "l1", "l7"),))
LINES_MORE = Filters(start=START, end=END, model_ids=("m/1",), device_ids=("cam-1",),
                     meta=(MetaTerm("temp", bounds=((">=", 40.0),)), MetaTerm.equal("line", "l2"),
                           MetaTerm.equal("shift", "night")))
# A value's text alone (values, a value excluded): read from the copies' sums per hour.
NOT_LINE = Filters(start=START, end=END, model_ids=("m/2",), meta=(MetaTerm("line", not_texts=("l1",)),))
# A number's terms first (the copies carry each value's number): a range, a number or a text,
# numbers excluded.
RANGE = Filters(start=START, end=END, meta=(MetaTerm("temp", bounds=((">", 100.0), ("<=", 150.0))),))
NUMBERS = Filters(start=START, end=END, device_ids=("cam-1",),
                  meta=(MetaTerm("temp", texts=("12.5", "24.5"), numbers=(100.25, 4.0, 8.0, 16.0)),))
NOT_NUMBERS = Filters(start=START, end=END, meta=(MetaTerm("temp", not_numbers=(100.25,), bounds=(("<", 150.0),)),))

# Every filter with every group, each pair asked two of the field-and-bucket pairs, so that each
# group meets all eight of them across the filters (the whole product asked 240 questions of
# each store at every step, four times these, and found nothing they do not).
NUMERIC_FILTERS = (WINDOW, ONE_DEVICE, Filters(start=START, end=END, model_ids=("m/1",)), LINES, ONE_MODEL)
NUMERIC_GROUPS = (None, "model_id", "device_id", "meta.line", "meta.shift", "meta.none")
NUMERIC_ASKS = list(itertools.product(("temp", "line"), (None, timedelta(hours=1), timedelta(hours=3),
                                                          timedelta(minutes=30))))


def rows(seed: int, n: int, hours: int, prefix: str) -> InferenceRows:
    rng = random.Random(seed)
    out = InferenceRows()
    for i in range(n):
        out.ws.append(1)
        out.inference_id.append(f"{prefix}-{i}")
        out.image_index.append(0)
        ts = int(BASE.timestamp() * 10**6) + rng.randrange(hours * HOUR_US)
        out.ts_us.append(ts)
        out.received_us.append(ts)
        out.model_id.append(rng.choice(["m/1", "m/2"]))
        out.task.append("object-detection")
        out.device_id.append(rng.choice(["cam-1", "cam-2", None]))
        out.tags.append([])
        out.source.append("native")
        out.inference_time.append(None if rng.random() < 0.1 else round(rng.uniform(0.01, 0.2), 3))
        out.image_width.append(640)
        out.image_height.append(480)
        k = rng.choice([0, 1, 2, 3])
        # Some name the server's version (Roboflow's inference-stats lists them per class).
        out.extra.append(None if k % 2 else f'{{"inference_server_version": "{rng.choice(["0.9", "1.0"])}"}}')
        out.n_predictions.append(k)
        for _ in range(k):
            out.p_class.append(rng.choice(["a", "b", "c"]))
            out.p_class_id.append(None)
            # None too: ingest always gives one, but the stores' column allows none.
            out.p_confidence.append(rng.choice([0.05, 0.5, 1.0, rng.random(), None]))  # type: ignore[arg-type]
            for column in (out.p_x, out.p_y, out.p_width, out.p_height):
                column.append(1.0)
            out.p_detection_id.append(None)
            out.p_points.append(None)
            out.p_keypoints.append(None)
    return out


def meta(*triples: tuple[str, str, MetaScalar]) -> MetadataRows:
    out = MetadataRows()
    for inference_id, name, value in triples:
        out.add(1, inference_id, name, value, int(BASE.timestamp() * 10**6))
    return out


def answers(store: DuckDBStore) -> list[Any]:
    return [
        store.series(1, f, bucket, group_by)
        for f in (WINDOW, ONE_MODEL, ONE_DEVICE, WARM, LINES, LINES_MORE, NOT_LINE)
        for bucket in (timedelta(hours=1), timedelta(hours=6), timedelta(days=1))
        for group_by in ("class", None, "model_id", "device_id", "meta.line")
    ] + [store.distributions(1, f, HISTOGRAM_BINS) for f in (WINDOW, ONE_MODEL)] + [
        # Grouped by a metadata field: from the copies beside the metadata (`cache/meta_copies.py`), with
        # class terms too (the stored classes answer them there).
        store.group_table(1, f, group_by) for f in (WINDOW, ONE_MODEL, ONE_DEVICE, Filters(), WARM)
        for group_by in ("meta.line", "meta.shift", "model_id", "device_id")] + [
        store.totals(1, f) for f in (WINDOW, ONE_DEVICE, WARM, LINES, LINES_MORE, NOT_LINE)] + [
        # The models table and Roboflow's class figures: times and confidences bucketed
        # (`store/sketch.py`), their quantiles within its bounds.
        store.models(1, f) for f in (WINDOW, ONE_DEVICE, WARM)] + [
        store.class_stats(1, START, END, models) for models in ((), ("m/2",))] + [
        store.totals(1, f) for f in (RANGE, NUMBERS, NOT_NUMBERS)] + [
        store.series(1, f, timedelta(hours=1), group_by) for f in (RANGE, NUMBERS, NOT_NUMBERS)
        for group_by in (None, "class", "meta.line")] + [
        # A numeric field's figures: whole hours from the copies' hourly numbers, alone and per
        # value of a field beside them (one no copy holds included).
        store.numeric_figures(1, f, field, group_by, bucket)
        for n, (f, group_by) in enumerate(itertools.product(NUMERIC_FILTERS, NUMERIC_GROUPS))
        for field, bucket in (NUMERIC_ASKS[n % 8], NUMERIC_ASKS[(n + 3) % 8])] + [
        # The list with metadata terms: through the copies of each widening window.
        pages(store, f) for f in (LINES, LINES_MORE, RANGE, NOT_NUMBERS, Filters(meta=LINES.meta))] + [
        # The devices page: each device's facts from every hour's sums, the period's count too.
        store.devices(1, start, end) for start, end in ((START, END), (START, START + timedelta(minutes=30)))]


def pages(store: DuckDBStore, filters: Filters) -> list[Any]:
    """The list's first two pages."""
    first, after = store.list_inferences(1, filters, None, 40)
    return [first, after, after and store.list_inferences(1, filters, after, 40)]


def scanned(path: Path, ask: Callable[[DuckDBStore], list[Any]] = answers) -> list[Any]:
    """The same answers from the predictions themselves, and the metadata joined to them: the
    store without its caches, on the same file (one database in this process)."""
    plain = DuckDBStore(str(path), caches=False)
    try:
        return ask(plain)
    finally:
        plain.close()


def deleted_offline(path: Path, ids_like: str) -> DuckDBStore:
    """Deletes the inferences whose id is LIKE `ids_like` while no server holds the file, then
    opens the store again: its start-up checks must find what changed."""
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM inferences WHERE inference_id LIKE ?", [ids_like])
    con.close()
    store = DuckDBStore(str(path))
    store.migrate()
    return store


def summed_rows(store: DuckDBStore, table: str = "class_hours") -> int:
    found = store._cursor().execute(f"SELECT count(*) FROM {table}").fetchone()
    assert found is not None
    return int(found[0])


def test_sums_answer_as_the_scan_through_every_change(tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    store = DuckDBStore(str(path))
    store.migrate()
    store.create_workspace("w", "h")
    # Metadata with the inferences, and for ids not seen yet ("second-…" arrive below).
    assert store.append(rows(1, 3000, 10, "first"), meta(
        *((f"first-{i}", "line", f"l{i % 3}") for i in range(0, 3000, 2)),
        *((f"first-{i}", "shift", "night") for i in range(0, 3000, 5)),
        *((f"second-{i}", "line", "l9") for i in range(0, 500, 7)),
        *((f"first-{i}", "temp", i % 160 if i % 3 else f"{i % 160}.5") for i in range(0, 3000, 4)))) == 3000
    summed = answers(store)
    assert summed_rows(store) > 0  # the whole hours came from the sums
    assert sum(p.count for p in summed[0]) > 0
    assert all(a.inferences > 0 for a in summed if isinstance(a, Totals))
    assert any(d.inferences > 0 for d in summed[-2])
    # The numeric figures by a field came from the copies' hourly numbers.
    assert summed_rows(store, "meta_number_hours WHERE group_field = 'line'") > 0
    same(summed, scanned(path))

    # New rows in hours already summed, and a batch re-sending some of them (the dedup path).
    more = rows(2, 500, 10, "second")
    assert store.append(more, MetadataRows()) == 500
    again = rows(2, 200, 10, "second")
    again.extend(rows(3, 100, 10, "third"))
    assert store.append(again, MetadataRows()) == 100
    changed = answers(store)
    assert changed != summed
    same(changed, scanned(path))

    # Metadata written after its inferences: new fields, values replaced; then a second image
    # of an id that has metadata, in an hour of its own.
    store.append(InferenceRows(), meta(*((f"first-{i}", "line", "l7") for i in range(0, 3000, 6)),
                                       *((f"first-{i}", "temp", 100.25) for i in range(0, 3000, 9)),
                                       *((f"third-{i}", "shift", "day") for i in range(100))))
    late = rows(5, 1, 1, "first")
    late.image_index[0] = 1
    late.ts_us[0] += 8 * HOUR_US
    assert store.append(late, MetadataRows()) == 1
    relabelled = answers(store)
    assert relabelled != changed
    same(relabelled, scanned(path))
    changed = relabelled

    # A sweep deletes the first hours' rows: found by comparing every hour's count again.
    result = store.sweep(1, (BASE + timedelta(hours=3, minutes=30)).replace(tzinfo=None), None, None)
    assert result.inferences > 0
    swept = answers(store)
    assert swept != changed
    same(swept, scanned(path))

    # Rows and metadata written, then only the sums read before the server stops: the copies
    # are found out of date at start-up by their own checks and the noted metadata writes.
    assert store.append(rows(6, 200, 10, "sixth"), meta(*((f"sixth-{i}", "line", "l5") for i in range(0, 200, 3)),
                                                          ("first-10", "line", "l8"))) == 200
    store.totals(1, WINDOW)
    store.close()

    # Rows deleted and added while no server held the file: found at start-up.
    store = deleted_offline(path, "first-1%")
    outside = answers(store)
    assert outside != swept
    same(outside, scanned(path))
    assert store.append(rows(4, 300, 10, "fourth"), MetadataRows()) == 300
    same(answers(store), scanned(path))
    store.close()


def swept_and_deleted_offline(store: DuckDBStore, path: Path, ask: Callable[[DuckDBStore], list[Any]],
                              before: list[Any]) -> None:
    """The days' answers change and still equal the scan's after a sweep of the first day and a
    half, then after rows of the second day deleted while no server held the file."""
    store.sweep(1, (BASE + timedelta(days=1, hours=5)).replace(tzinfo=None), None, None)
    swept = ask(store)
    assert swept != before
    same(swept, scanned(path, ask))
    store.close()
    store = deleted_offline(path, "d-1%")
    outside = ask(store)
    assert outside != swept
    same(outside, scanned(path, ask))
    store.close()


def test_whole_days_answer_as_the_scan(tmp_path: Path) -> None:
    """A window of days reads the confidence bins of its whole days from their sums per day: they
    answer as the scan through new rows in a day already summed, a sweep, and rows deleted while
    no server held the file."""
    path = tmp_path / "days.duckdb"
    store = DuckDBStore(str(path))
    store.migrate()
    store.create_workspace("w", "h")
    start, end = BASE + timedelta(hours=3, minutes=5), BASE + timedelta(days=3, hours=2, minutes=50)
    window = Filters(start=start, end=end)

    def days_answers(s: DuckDBStore) -> list[Any]:
        return [s.distributions(1, window, HISTOGRAM_BINS),
                s.distributions(1, Filters(start, end, model_ids=("m/2",)), HISTOGRAM_BINS),
                s.class_stats(1, start, end, ()), s.class_stats(1, start, end, ("m/1",)), s.totals(1, window),
                s.models(1, window)]

    assert store.append(rows(1, 4000, 80, "d"), MetadataRows()) == 4000
    first = days_answers(store)
    days = store._cursor().execute("SELECT count(DISTINCT day) FROM class_bin_days").fetchone()
    assert days is not None and days[0] >= 2
    same(first, scanned(path, days_answers))
    assert store.append(rows(2, 300, 80, "e"), MetadataRows()) == 300
    more = days_answers(store)
    assert more != first
    same(more, scanned(path, days_answers))
    swept_and_deleted_offline(store, path, days_answers, more)


def test_the_last_hour_there_is(tmp_path: Path) -> None:
    """An inference in the last hour of year 9999, and a window starting inside it: no overflow
    working out the hour after."""
    store = DuckDBStore(str(tmp_path / "edge.duckdb"))
    store.migrate()
    store.create_workspace("w", "h")
    late = rows(5, 3, 1, "late")
    last_hour = int(datetime(9999, 12, 31, 23, tzinfo=UTC).timestamp() * 10**6)
    late.ts_us[:] = [last_hour + 60 * 10**6 * i for i in range(3)]
    assert store.append(late, MetadataRows()) == 3
    everything = Filters(start=datetime(9999, 12, 31, 22, tzinfo=UTC),
                         end=datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert store.totals(1, everything).inferences == 3
    inside = Filters(start=datetime(9999, 12, 31, 23, 30, tzinfo=UTC), end=everything.end)
    assert store.totals(1, inside).inferences == 0
    assert sum(p.count for p in store.series(1, everything, timedelta(hours=1), "class")) == sum(late.n_predictions)
    store.close()


def test_metadata_notes_do_not_pile_up(tmp_path: Path) -> None:
    """Where nobody groups by metadata, a read of the sums makes the copies once enough metadata
    writes are noted, and clears the notes."""
    store = DuckDBStore(str(tmp_path / "notes.duckdb"))
    store._caches.notes_at_most = 3
    store.migrate()
    store.create_workspace("w", "h")
    store.append(rows(1, 10, 2, "n"), meta(("n-1", "line", "a"), ("n-2", "line", "b")))

    def noted() -> int:
        found = store._cursor().execute("SELECT count(*) FROM metadata_changed").fetchone()
        assert found is not None
        return int(found[0])

    store.totals(1, WINDOW)
    assert noted() == 2  # below the bar: left for a read that needs the copies
    store.group_table(1, WINDOW, "meta.line")  # makes the copies of the window's hours
    assert noted() == 0
    store.append(InferenceRows(), meta(("n-3", "line", "c"), ("n-4", "line", "d"), ("n-5", "line", "e")))
    store.totals(1, WINDOW)
    assert noted() == 0
    copies = store._cursor().execute("SELECT count(*) FROM metadata_facts").fetchone()
    assert copies == (5,)
    store.close()


def test_notes_in_stale_hours_are_left_to_the_hour(tmp_path: Path) -> None:
    """A metadata note whose inference is in an hour a commit made stale makes no copy: that hour
    is made again whole before a read uses it, and its checks are dropped so that a restart finds
    it stale too. The other noted hours have their copies made as before. Every answer is the scan's."""
    path = tmp_path / "stale.duckdb"
    store = DuckDBStore(str(path))
    store._caches.notes_at_most = 1
    store.migrate()
    store.create_workspace("w", "h")
    early = rows(7, 40, 4, "e")
    store.append(early, meta(*((f"e-{i}", "line", f"l{i % 3}") for i in range(0, 40, 2))))

    def grouped(s: DuckDBStore) -> list[Any]:
        return [s.group_table(1, WINDOW, "meta.line"), s.group_table(1, Filters(), "meta.line")]

    def hour_of(i: int) -> datetime:
        return datetime.fromtimestamp(early.ts_us[i] // HOUR_US * 3600, UTC).replace(tzinfo=None)

    def checked_hours() -> set[datetime]:
        return {h for (h,) in store._cursor().execute("SELECT hour FROM fact_hours").fetchall()}

    same(grouped(store), scanned(path, grouped))  # every hour's copies made
    elsewhere = next(i for i in range(0, 40, 2) if hour_of(i) != hour_of(0))
    assert {hour_of(0), hour_of(elsewhere)} <= checked_hours()
    # A commit that leaves the first row's hour with the count and key checksum it had (an event
    # re-sent with other metadata replaces its inferences by the same keys) makes that hour stale
    # in memory only; then the first row and a row of another hour get new metadata.
    store._caches.touched(pa.table({"ws": pa.array([1], pa.int32()), "ts": pa.array([hour_of(0)], pa.timestamp("us"))}))
    store.append(InferenceRows(), meta(("e-0", "line", "moved"), (f"e-{elsewhere}", "line", "moved")))
    store.totals(1, WINDOW)  # a read of the sums takes the notes (at most one here)
    assert store._cursor().execute("SELECT count(*) FROM metadata_changed").fetchone() == (0,)
    assert hour_of(0) not in checked_hours()
    assert hour_of(elsewhere) in checked_hours()
    store.close()
    # Memory gone before any read made the first hour again, its inferences' count and checksum
    # those its copies were made from: only the dropped checks say it must be made again.
    reopened = DuckDBStore(str(path))
    reopened.migrate()
    same(grouped(reopened), scanned(path, grouped))
    reopened.close()


# Measured accuracy: ground truth as a label, a pass/fail field and a group field, each asked
# with settings the hourly sums answer (`cache/meta_verdicts.py`) and some they leave to the
# copies or the rows (a threshold, a label map to another class, other bins, feedback).
LABELLED = GroundTruth(label_field="label")
MAPPED = GroundTruth(label_field="label", label_map={"x": "none", "a": "a"}, pass_field="insp")
INSPECTED = GroundTruth(label_field="label", pass_field="insp", fail_values=["failed", "7"])
ELSEWHERE = GroundTruth(label_field="label", label_map={"a": "b"}, pass_field="insp")
THRESHOLD = GroundTruth(label_field="label", confidence_threshold=0.5, pass_field="insp")
PERFORMANCE_ASKS = [
    (LABELLED, timedelta(hours=1), None, DEFAULT_BINS), (MAPPED, timedelta(hours=3), "line", DEFAULT_BINS),
    (INSPECTED, timedelta(hours=1), "temp", DEFAULT_BINS), (INSPECTED, timedelta(hours=2), "insp", DEFAULT_BINS),
    (LABELLED, timedelta(hours=1), "label", DEFAULT_BINS), (MAPPED, timedelta(minutes=30), None, DEFAULT_BINS),
    (INSPECTED, timedelta(hours=1), None, 7), (ELSEWHERE, timedelta(hours=1), "line", DEFAULT_BINS),
    (THRESHOLD, timedelta(hours=1), "line", DEFAULT_BINS), (feedback_setting(), timedelta(hours=1), None, DEFAULT_BINS),
]
PERFORMANCE_FILTERS = (Filters(start=START, end=END, model_ids=("m/1",)),
                       Filters(start=START, end=END, model_ids=("m/2",)),
                       Filters(start=START, end=END, model_ids=("m/1",), device_ids=("cam-1",)))


def performance_answers(store: DuckDBStore) -> list[Any]:
    """The counts as dicts, so that `same` compares their mean confidences to 12 digits."""
    return [dataclasses.asdict(store.performance_counts(1, f, setting, bucket, group, bins))
            for f in PERFORMANCE_FILTERS for setting, bucket, group, bins in PERFORMANCE_ASKS]


def labels(ids: range, prefix: str, seed: int) -> MetadataRows:
    """Labels (a number now and then), pass/fail values, lines, temperatures and feedback."""
    rng = random.Random(seed)
    out = MetadataRows()
    fields: list[tuple[str, float, list[MetaScalar]]] = [
        ("label", 0.7, ["a", "b", "c", "none", "x", 7]), ("insp", 0.5, ["passed", "failed", "FAILED", 7]),
        ("line", 0.6, ["l1", "l2"]), ("temp", 0.3, [20, 21.5, "hot"]), (FEEDBACK_FIELD, 0.2, list(VERDICTS))]
    for i in ids:
        for name, share, values in fields:
            if rng.random() < share:
                out.add(1, f"{prefix}-{i}", name, rng.choice(values), int(BASE.timestamp() * 10**6))
    return out


def test_performance_sums_answer_as_the_scan(tmp_path: Path) -> None:
    """Measured accuracy from the copies' hourly sums answers as the plain scan through appends,
    re-sends, late ground truth and feedback, a sweep, and rows changed while no server ran."""
    path = tmp_path / "perf.duckdb"
    store = DuckDBStore(str(path))
    store.migrate()
    store.create_workspace("w", "h")
    assert store.append(rows(1, 3000, 10, "p"), labels(range(0, 3000), "p", 1)) == 3000
    first = performance_answers(store)
    assert summed_rows(store, "meta_verdict_hours WHERE group_field IS NULL AND field_name = 'label'") > 0
    assert summed_rows(store, "meta_verdict_hours WHERE group_field = 'line'") > 0
    assert all(c["confusion"] and c["over_time"] and c["calibration"] for c in first)
    same(first, scanned(path, performance_answers))

    # New rows in hours already summed, some re-sent, with their labels.
    more = rows(2, 400, 10, "q")
    assert store.append(more, labels(range(0, 400), "q", 2)) == 400
    again = rows(2, 100, 10, "q")
    again.extend(rows(3, 100, 10, "r"))
    assert store.append(again, MetadataRows()) == 100
    appended = performance_answers(store)
    assert appended != first
    same(appended, scanned(path, performance_answers))

    # Ground truth and feedback arriving late: new labels, labels replaced, numbers for texts.
    store.append(InferenceRows(), labels(range(0, 3000, 3), "p", 3))
    store.append(InferenceRows(), labels(range(100), "r", 4))
    late = performance_answers(store)
    assert late != appended
    same(late, scanned(path, performance_answers))

    # A sweep of the first hours.
    assert store.sweep(1, (BASE + timedelta(hours=3, minutes=30)).replace(tzinfo=None), None, None).inferences > 0
    swept = performance_answers(store)
    assert swept != late
    same(swept, scanned(path, performance_answers))
    store.append(InferenceRows(), labels(range(3000, 3100), "p", 5))
    store.close()

    # Labels written by a store without its caches (as the CLI does), and rows deleted, while no
    # server held the file.
    offline = DuckDBStore(str(path), caches=False)
    offline.append(InferenceRows(), labels(range(2000, 2600), "p", 6))
    offline.close()
    store = deleted_offline(path, "p-1%")
    outside = performance_answers(store)
    assert outside != swept
    same(outside, scanned(path, performance_answers))
    store.close()


def test_performance_whole_days_answer_as_the_scan(tmp_path: Path) -> None:
    """Over days at a bucket of days, measured accuracy reads its whole days' sums per day: they
    answer as the scan through new rows and late labels in days already summed, a sweep, and
    rows deleted while no server held the file."""
    path = tmp_path / "perf-days.duckdb"
    store = DuckDBStore(str(path))
    store.migrate()
    store.create_workspace("w", "h")
    start, end = BASE + timedelta(hours=3, minutes=5), BASE + timedelta(days=3, hours=2, minutes=50)

    def days_answers(s: DuckDBStore) -> list[Any]:
        return [dataclasses.asdict(s.performance_counts(1, Filters(start, end, model_ids=(model,)), setting, bucket,
                                                        group, DEFAULT_BINS))
                for model in ("m/1", "m/2")
                for setting, group in ((INSPECTED, None), (MAPPED, "line"), (LABELLED, "temp"))
                for bucket in (timedelta(days=1), timedelta(hours=6))]

    assert store.append(rows(1, 4000, 80, "d"), labels(range(4000), "d", 1)) == 4000
    first = days_answers(store)
    summed = store._cursor().execute("SELECT count(DISTINCT day) FROM meta_verdict_days").fetchone()
    assert summed is not None and summed[0] >= 3
    same(first, scanned(path, days_answers))
    assert store.append(rows(2, 300, 80, "e"), labels(range(300), "e", 2)) == 300
    store.append(InferenceRows(), labels(range(0, 4000, 5), "d", 3))
    more = days_answers(store)
    assert more != first
    same(more, scanned(path, days_answers))
    swept_and_deleted_offline(store, path, days_answers, more)
