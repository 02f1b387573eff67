"""Measured performance answers the same on DuckDB and on the ClickHouse engine (chdb), for the
parity module's seeded rows: labels, pass/fail values and groups come from its metadata fields."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.filters import Filters
from inferwatch.query.performance import GroundTruth, report
from inferwatch.store import open_store
from inferwatch.store.base import Store
from inferwatch.store.duckdb import DuckDBStore
from tests.unit.test_store_parity import BASE, FILTERS, IDS, same, stores

__all__ = ["stores"]  # the module-scoped fixture: both stores, seeded alike

SETTINGS = [
    GroundTruth(label_field="line", label_map={"a": "car", "b": "person", "c": "none"}),
    GroundTruth(label_field="line", label_map={"a": "car", "d": "truck"}, confidence_threshold=0.5,
                no_detection_label="b", pass_field="shift", fail_values=["A", "c"]),
    GroundTruth(label_field="nothing-here"),
]


@pytest.mark.parametrize("setting", SETTINGS, ids=["mapped", "threshold-and-inspection", "unlabelled"])
@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
def test_performance_counts(stores: tuple[Store, Store], filters: Filters, setting: GroundTruth) -> None:
    duck, chdb = stores
    for group_field in (None, "lot"):
        answers = [report(store.performance_counts(1, filters, setting, timedelta(hours=1), group_field, 7), setting, 7)
                   for store in (duck, chdb)]
        same(answers[0], answers[1])


def test_the_compared_answers_are_not_empty(stores: tuple[Store, Store]) -> None:
    duck, _ = stores
    for setting in SETTINGS[:2]:
        body = report(duck.performance_counts(1, Filters(), setting, timedelta(hours=1), "lot", 7), setting, 7)
        assert body["labelled"] > 50 and 0 < body["correct"] < body["labelled"]
        assert len(body["by_group"]) == 4 and body["calibration"] and body["over_time"]
    inspected = report(duck.performance_counts(1, Filters(), SETTINGS[1], timedelta(hours=1), None, 7),
                       SETTINGS[1], 7)["inspection"]
    assert inspected is not None and inspected["inspected"] > 50 and inspected["flagged_and_failed"] > 0


def test_ground_truth_settings_round_trip(stores: tuple[Store, Store]) -> None:
    for store in stores:
        assert store.ground_truth(1, "cars/1") is None
        store.set_ground_truth(1, "cars/1", SETTINGS[1])
        store.set_ground_truth(1, "cars/1", SETTINGS[0])  # the later write wins
        assert store.ground_truth(1, "cars/1") == SETTINGS[0]
        assert store.ground_truth(2, "cars/1") is None


def test_a_tie_for_the_top_confidence_goes_to_the_first_class_by_name(tmp_path: Path, chdb_url: Any) -> None:
    """Two classes equally confident at the top of a wrong verdict: both stores name the same one,
    whatever order the model listed them in."""
    rows, meta = InferenceRows(), MetadataRows()
    ts = int(BASE.timestamp() * 10**6)
    for i, listed in enumerate((["truck", "bike", "car"], ["bike", "truck", "car"])):
        rows.ws.append(1)
        rows.inference_id.append(f"tie-{i}")
        rows.image_index.append(0)
        rows.ts_us.append(ts + i)
        rows.received_us.append(ts + i)
        rows.model_id.append("cars/1")
        rows.task.append("object-detection")
        rows.device_id.append(None)
        rows.source.append("native")
        rows.inference_time.append(0.1)
        rows.image_width.append(None)
        rows.image_height.append(None)
        rows.extra.append(None)
        rows.tags.append([])
        rows.n_predictions.append(len(listed))
        for cls in listed:
            rows.p_class.append(cls)
            rows.p_confidence.append(0.3 if cls == "car" else 0.9)
            rows.p_class_id.append(None)
            rows.p_detection_id.append(None)
            rows.p_points.append(None)
            rows.p_keypoints.append(None)
            for column in (rows.p_x, rows.p_y, rows.p_width, rows.p_height):
                column.append(1.0)
        meta.add(1, f"tie-{i}", "expected", "person", ts)
    setting = GroundTruth(label_field="expected", confidence_threshold=0.5)
    for store in (DuckDBStore(str(tmp_path / "tie.duckdb")), open_store(chdb_url("tie"))):
        store.migrate()
        store.create_workspace("w", "h")
        store.append(rows, meta)
        counts = store.performance_counts(1, Filters(), setting, timedelta(hours=1), None, 7)
        assert counts.confusion == {("person", "bike"): 2}, type(store).__name__
        store.close()
