"""The ClickHouse backend (on chdb, the real engine in-process) answers every query exactly as DuckDB.

The same seeded rows go into a DuckDB store and a chdb store through their own `append`, with
what makes answers differ when a backend gets it wrong: repeated identities (within a batch and
across batches), metadata rewritten later, device reports that leave facts out, inferences
without a device, time or predictions, confidences on bin edges, several workspaces. Then every
read of the `Store` protocol is asked the same questions on both, and the answers must be equal.
Floats are compared to 12 significant digits: a sum's last bits depend on the order the engine
adds in, which is nobody's answer.
"""

from __future__ import annotations

import dataclasses
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
import pytest

from inferwatch.ingest.rows import DeviceRows, InferenceRows, MetadataRows
from inferwatch.query.filters import Filters, MetaTerm
from inferwatch.store import open_store, sketch
from inferwatch.store.base import Cursor, ImageRecord, InferenceRow, Store
from inferwatch.store.duckdb import DuckDBStore

BASE = datetime(2026, 3, 30, 22, 0, tzinfo=UTC)  # a month boundary falls inside the data
BASE_US = int(BASE.timestamp() * 1_000_000)
MODELS = ("cars/1", "cars/2", "people/7")
DEVICES = ("cam-a", "cam-b", "cam-c", None)
CLASSES = ("car", "person", "truck", "Bus", "bike")
CONFIDENCES = (0.0, 0.25, 0.5, 0.75, 1.0)  # on the edges of histogram bins
# Metadata sent as numbers, and as strings that read as numbers (kept strings) or do not.
TEMPERATURES: tuple[str | int | float, ...] = (3, 150, 151.5, -2.5, 0, 1e-07, 10**20, "150", "7",
                "1e3", "0x10", " 4", "hot", "1e999")
FLAGS: tuple[str | bool, ...] = (True, False, "true", "no")


def _add(rows: InferenceRows, rng: random.Random, ws: int, inference_id: str, image_index: int,
         ts_us: int) -> None:
    rows.ws.append(ws)
    rows.inference_id.append(inference_id)
    rows.image_index.append(image_index)
    rows.ts_us.append(ts_us)
    rows.received_us.append(ts_us + rng.randrange(0, 5_000_000))
    model = rng.choice(MODELS)
    rows.model_id.append(model)
    rows.task.append("classification" if model == "people/7" else "object-detection")
    rows.device_id.append(rng.choice(DEVICES))
    rows.tags.append(rng.sample(["line-1", "line-2", "night"], rng.randrange(0, 3)))
    rows.source.append(rng.choice(["native", "pingback"]))
    rows.inference_time.append(None if rng.random() < 0.15 else round(rng.uniform(0.005, 0.4), 4))
    rows.image_width.append(rng.choice([640, 1280, None]))
    rows.image_height.append(rng.choice([480, 720, None]))
    rows.extra.append(rng.choice([None, '{"inference_server_version": "0.9.1"}',
                                  '{"inference_server_version": "0.10.0", "note": "x"}', '{"note": "y"}']))
    n = rng.choice([0, 1, 1, 2, 3, 5])
    rows.n_predictions.append(n)
    for _ in range(n):
        rows.p_class.append(rng.choice(CLASSES))
        rows.p_class_id.append(rng.choice([None, 0, 3]))
        rows.p_confidence.append(rng.choice(CONFIDENCES) if rng.random() < 0.2 else round(rng.random(), 3))
        rows.p_x.append(rng.uniform(0, 600))
        rows.p_y.append(rng.uniform(0, 400))
        rows.p_width.append(rng.uniform(1, 50))
        rows.p_height.append(rng.uniform(1, 50))
        rows.p_detection_id.append(rng.choice([None, f"d{rng.randrange(1000)}"]))
        rows.p_points.append(None if rng.random() < 0.8 else "[{\"x\": 1.0, \"y\": 2.0}]")
        rows.p_keypoints.append(None)


def seed(stores: list[Store]) -> None:
    """The same batches, appended to every store in the same order."""
    rng = random.Random(20261127)
    for store in stores:
        store.migrate()
        store.create_workspace("alpha", "hash-a")
        store.create_workspace("beta", "hash-b")
    batches: list[tuple[InferenceRows, MetadataRows, DeviceRows | None]] = []
    ids: list[tuple[int, str, int]] = []
    for b in range(8):
        rows, meta, devices = InferenceRows(), MetadataRows(), DeviceRows()
        reported: DeviceRows | None = devices if b % 2 else None
        for _ in range(120):
            ws = 1 if rng.random() < 0.8 else 2
            if ids and rng.random() < 0.08:  # a re-sent inference: stored already or earlier in the batch
                ws, inference_id, image_index = rng.choice(ids)
            else:
                inference_id, image_index = f"inf-{rng.randrange(10**9):09d}", rng.choice([0, 0, 0, 1])
                ids.append((ws, inference_id, image_index))
            _add(rows, rng, ws, inference_id, image_index, BASE_US + rng.randrange(0, 6 * 3600 * 10**6))
        for _ in range(60):
            ws, inference_id, _index = rng.choice(ids)
            now = BASE_US + b * 10**9 + len(meta)
            meta.add(ws, inference_id, rng.choice(["line", "shift", "lot"]), rng.choice(["a", "b", "c", "d"]), now)
        for _ in range(40):  # typed values, and strings that read as numbers or do not
            ws, inference_id, _index = rng.choice(ids)
            now = BASE_US + b * 10**9 + len(meta)
            meta.add(ws, inference_id, "temp", rng.choice(TEMPERATURES), now)
            meta.add(ws, inference_id, "ok", rng.choice(FLAGS), now)
        meta.add(1, "named-before-it-exists", "line", "z", BASE_US + b)
        for _ in range(3):
            devices.add(1, rng.choice(["cam-a", "cam-b", "edge-9"]), BASE_US + b * 10**8 + rng.randrange(10**6),
                        rng.choice([None, "srv-1", "srv-2"]), rng.choice([None, "0.9.1"]),
                        rng.choice([None, "host"]), None, rng.choice([None, [], ["x", "y"]]))
        batches.append((rows, meta, reported))
    for store in stores:
        for batch in batches:
            store.append(*batch)
        image = ImageRecord(1, "ab" * 32, None, "image/png", 4, 3, 120, "a.png", None, None, ["t"],
                            BASE.replace(tzinfo=None))
        assert store.insert_image(image) is True
        assert store.insert_image(image) is False
        assert store.image(1, "ab" * 32) == image  # read (and kept by a store that keeps reads) before
        linked = ImageRecord(1, "ab" * 32, ids[0][1], "image/png", 4, 3, 120, "a.png", None, None, ["t"],
                             BASE.replace(tzinfo=None))
        assert store.insert_image(linked) is False
        assert store.image(1, "ab" * 32) == linked  # the inference it became, as stored now


# The figures a store may read from mergeable summaries (`store/sketch.py`): the exact figure's
# within the sketch's bound, by the field's name.
_SKETCHED = {"p50_inference_time": (sketch.ALPHA, 0.0), "p95_inference_time": (sketch.ALPHA, 0.0),
             "median_confidence": (0.0, sketch.CONFIDENCE_ERROR)}


def same(a: Any, b: Any, path: str = "") -> None:
    """Equal, with floats to 12 significant digits, and the sketched quantiles within their
    bound; says where they differ."""
    if isinstance(a, float) and isinstance(b, float):
        rel, abs_ = _SKETCHED.get(path.rsplit(".", 1)[-1], (1e-12, 1e-15))
        assert math.isclose(a, b, rel_tol=rel * (1 + 1e-9), abs_tol=max(abs_ * (1 + 1e-9), 1e-15)), \
            f"{path}: {a!r} != {b!r}"
    elif isinstance(a, msgspec.Struct) and isinstance(b, msgspec.Struct):
        assert type(a) is type(b), f"{path}: {type(a).__name__} != {type(b).__name__}"
        same(msgspec.structs.asdict(a), msgspec.structs.asdict(b), path)
    elif isinstance(a, dict) and isinstance(b, dict):
        assert list(a) == list(b) or set(a) == set(b), f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            same(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list | tuple) and isinstance(b, list | tuple):
        assert len(a) == len(b), f"{path}: {len(a)} items != {len(b)}\n{a}\n{b}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory, chdb_url: Any) -> Iterator[tuple[Store, Store]]:
    duck: Store = DuckDBStore(str(tmp_path_factory.mktemp("parity") / "parity.duckdb"))
    chdb = open_store(chdb_url("parity"))
    seed([duck, chdb])
    yield duck, chdb
    duck.close()
    chdb.close()


WINDOW = (BASE + timedelta(hours=1), BASE + timedelta(hours=4, minutes=30))
FILTERS = [
    Filters(),
    Filters(start=WINDOW[0], end=WINDOW[1]),
    Filters(model_ids=("cars/1", "people/7")),
    Filters(device_ids=("cam-b",)),
    Filters(classes=("car", "Bus")),
    Filters(min_confidence=0.5),
    Filters(classes=("person",), min_confidence=0.25, max_confidence=0.75),
    Filters(tags=("night", "line-2")),
    Filters(meta=(MetaTerm.equal("line", "a", "b"),)),
    Filters(meta=(MetaTerm.equal("line", "a"), MetaTerm.equal("shift", "c", "d"))),
    Filters(start=WINDOW[0], end=WINDOW[1], model_ids=("cars/2",), classes=("truck",),
            meta=(MetaTerm.equal("lot", "b"),)),
    # Typed metadata: ranges, numbers equal as numbers, texts, flags, and what differs.
    Filters(meta=(MetaTerm("temp", bounds=((">", 3.0), ("<=", 151.5))),)),
    Filters(meta=(MetaTerm("temp", bounds=((">=", -2.5),)), MetaTerm.equal("line", "a", "c"))),
    Filters(meta=(MetaTerm("temp", texts=("hot",), numbers=(150.0, 1e-07)),)),
    Filters(meta=(MetaTerm("temp", not_numbers=(150.0,), not_texts=("hot",)),)),
    Filters(meta=(MetaTerm("ok", texts=("true",)),)),
    Filters(meta=(MetaTerm("ok", not_texts=("true",)),)),
    Filters(start=WINDOW[0], end=WINDOW[1], classes=("car",), min_confidence=0.3,
            meta=(MetaTerm("temp", bounds=(("<", 1000.0),)),)),
    Filters(model_ids=("nobody",)),
    # Whole hours answered from the per-hour sums, partial first and last hours from the rows.
    Filters(start=BASE + timedelta(minutes=17), end=BASE + timedelta(hours=5, minutes=41),
            model_ids=("cars/1", "cars/2"), classes=("car", "truck", "Bus")),
    Filters(start=BASE + timedelta(minutes=59), end=BASE + timedelta(hours=4), device_ids=("cam-a", "cam-c")),
    # Whole hours from the per-hour sums of a field's values.
    Filters(start=BASE + timedelta(minutes=17), end=BASE + timedelta(hours=5, minutes=41),
            meta=(MetaTerm.equal("line", "a", "b"),)),
    Filters(start=BASE + timedelta(hours=1), end=BASE + timedelta(hours=5), model_ids=("cars/1", "cars/2"),
            meta=(MetaTerm.equal("shift", "c"), MetaTerm.equal("shift", "c", "d"))),
    Filters(start=BASE + timedelta(minutes=17), end=BASE + timedelta(hours=5, minutes=41),
            meta=(MetaTerm("temp", bounds=((">", 3.0),), not_texts=("hot",)),)),
    Filters(start=BASE + timedelta(hours=1), end=BASE + timedelta(hours=3), meta=(MetaTerm.equal("line", "nobody"),)),
    # Far outside what a DateTime64 holds: must bind and select everything.
    Filters(start=datetime(1, 1, 1, tzinfo=UTC), end=datetime(9999, 1, 1, tzinfo=UTC)),
]
IDS = [f"f{i}" for i in range(len(FILTERS))]


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
def test_totals_models_and_distributions(stores: tuple[Store, Store], filters: Filters) -> None:
    duck, chdb = stores
    for ws in (1, 2, 3):
        same(duck.totals(ws, filters), chdb.totals(ws, filters), "totals")
        same(duck.models(ws, filters), chdb.models(ws, filters), "models")
        for bins in (10, 20):  # 20: the dashboard's, from the per-hour sums on DuckDB
            same(duck.distributions(ws, filters, bins), chdb.distributions(ws, filters, bins), "distributions")


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
@pytest.mark.parametrize("group_by", [None, "model_id", "device_id", "class", "meta.line", "meta.none"])
def test_series(stores: tuple[Store, Store], filters: Filters, group_by: str | None) -> None:
    duck, chdb = stores
    for bucket in (timedelta(minutes=5), timedelta(hours=1), timedelta(days=1)):
        same(duck.series(1, filters, bucket, group_by), chdb.series(1, filters, bucket, group_by), "series")
        # `/stats` reads both at once (on ClickHouse one pass of grouping sets where no summary answers).
        same(chdb.totals_and_series(1, filters, bucket, group_by),
             (duck.totals(1, filters), duck.series(1, filters, bucket, group_by)), "totals_and_series")


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
@pytest.mark.parametrize("group_by", ["model_id", "device_id", "meta.shift", "meta.none"])
def test_group_table(stores: tuple[Store, Store], filters: Filters, group_by: str) -> None:
    duck, chdb = stores
    same(duck.group_table(1, filters, group_by), chdb.group_table(1, filters, group_by), "group_table")


def _all_pages(store: Store, ws: int, filters: Filters, limit: int) -> list[tuple[list[InferenceRow], Cursor | None]]:
    out = []
    after = None
    while True:
        page, after = store.list_inferences(ws, filters, after, limit)
        out.append((page, after))
        if after is None:
            return out


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
def test_list_pages_and_single_inferences(stores: tuple[Store, Store], filters: Filters) -> None:
    duck, chdb = stores
    pages = _all_pages(duck, 1, filters, 37)
    same(pages, _all_pages(chdb, 1, filters, 37), "pages")
    listed = [row.inference_id for page, _ in pages for row in page]
    for inference_id in listed[:20]:
        same(duck.get_inference(1, inference_id), chdb.get_inference(1, inference_id), "get_inference")
    ids = [*listed, "named-before-it-exists", "never-seen"]
    same(duck.metadata_of(1, ids), chdb.metadata_of(1, ids), "metadata_of")


def test_class_stats_devices_fields_workspaces_images(stores: tuple[Store, Store]) -> None:
    duck, chdb = stores
    for ws in (1, 2):
        for start, end in [(BASE - timedelta(days=1), BASE + timedelta(days=1)), WINDOW]:
            for models in [(), ("cars/1",), ("people/7", "cars/2")]:
                same(duck.class_stats(ws, start, end, models), chdb.class_stats(ws, start, end, models), "class_stats")
            same(duck.devices(ws, start, end), chdb.devices(ws, start, end), "devices")
        for top in (1, 2, 10):
            same(duck.metadata_fields(ws, top), chdb.metadata_fields(ws, top), "metadata_fields")
    same([(w.id, w.slug, w.key_hash) for w in duck.workspaces()],
         [(w.id, w.slug, w.key_hash) for w in chdb.workspaces()], "workspaces")
    for store in (duck, chdb):
        image = store.image(1, "ab" * 32)
        assert image is not None and image.inference_id is not None
        assert store.image_of_inference(1, image.inference_id) == image
        assert store.image(2, "ab" * 32) is None


def test_counts_each_identity_once(tmp_path: Path, chdb_url: Any) -> None:
    """A batch sent again, and a batch repeating an id inside itself, add nothing twice; the
    answer of `append` (how many were new) agrees too."""
    duck: Store = DuckDBStore(str(tmp_path / "once.duckdb"))
    chdb = open_store(chdb_url("once"))
    rng = random.Random(7)
    rows = InferenceRows()
    for i in range(50):
        _add(rows, rng, 1, f"id-{i % 40}", 0, BASE_US + i)
    for store in (duck, chdb):
        store.migrate()
        assert store.append(rows, MetadataRows()) == 40
        assert store.append(rows, MetadataRows()) == 0
        assert store.totals(1, Filters()).inferences == 40
    same(_all_pages(duck, 1, Filters(), 100), _all_pages(chdb, 1, Filters(), 100), "pages")
    duck.close()
    chdb.close()


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
def test_drift_sample(stores: tuple[Store, Store], filters: Filters) -> None:
    """The newest inferences of a window, as drift reads them: the same rows, in the same order."""
    duck, chdb = stores
    for limit in (7, 10_000):
        for numbers in ((), None, ("temp", "ok", "line", "none")):
            rows = [dataclasses.astuple(r) for r in duck.drift_sample(1, filters, limit, numbers)]
            same(rows, [dataclasses.astuple(r) for r in chdb.drift_sample(1, filters, limit, numbers)],
                 f"drift_sample {numbers}")
    if filters == Filters():
        assert len(rows) == duck.totals(1, filters).inferences
        # Named fields give every number they hold (strings that read as numbers too); None gives
        # the fields sent as numbers only. Flags and words are never numbers.
        named = [r.numbers for r in duck.drift_sample(1, filters, 10_000, ("temp", "ok", "line"))]
        sent = [r.numbers for r in duck.drift_sample(1, filters, 10_000, None)]
        assert {k for n in named for k in n} == {"temp"} and {k for n in sent for k in n} == {"temp"}
        assert sum(len(n) for n in named) > sum(len(n) for n in sent) > 0
        assert all(not r.numbers for r in duck.drift_sample(1, filters, 10_000))


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
def test_numeric_figures(stores: tuple[Store, Store], filters: Filters) -> None:
    """A numeric metadata field's count, average, least and greatest per group and bucket."""
    duck, chdb = stores
    for group_by in (None, "model_id", "device_id", "meta.line", "meta.temp", "meta.none"):
        for bucket in (None, timedelta(minutes=5), timedelta(hours=1)):
            for field in ("temp", "ok", "none"):
                same(duck.numeric_figures(1, filters, field, group_by, bucket),
                     chdb.numeric_figures(1, filters, field, group_by, bucket), f"numeric {field} {group_by} {bucket}")
                # As `/stats` and `/groups` read them, with the whole window (one pass on ClickHouse).
                same(duck.numeric_figures_and_whole(1, filters, field, group_by, bucket),
                     chdb.numeric_figures_and_whole(1, filters, field, group_by, bucket),
                     f"numeric and whole {field} {group_by} {bucket}")
    if filters == Filters():
        (whole,) = duck.numeric_figures(1, filters, "temp", None, None)
        assert whole.count > 0 and whole.min is not None and whole.max == 1e20
        assert duck.numeric_figures(1, filters, "ok", None, None) == []
