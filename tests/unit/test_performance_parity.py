"""Measured performance answers the same on DuckDB and on the ClickHouse engine (chdb), for the
parity module's seeded rows: labels, pass/fail values and groups come from its metadata fields."""

from __future__ import annotations

from datetime import timedelta

import pytest

from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.filters import Filters
from inferwatch.query.performance import DEFAULT_BINS, FEEDBACK_FIELD, GroundTruth, feedback_setting, report
from inferwatch.store.base import Store
from tests.unit.test_store_parity import BASE_US, FILTERS, IDS, same, stores

__all__ = ["stores"]  # the module-scoped fixture: both stores, seeded alike

SETTINGS = [
    GroundTruth(label_field="line", label_map={"a": "car", "b": "person", "c": "none"}),
    GroundTruth(label_field="line", label_map={"a": "car", "d": "truck"}, confidence_threshold=0.5,
                no_detection_label="b", pass_field="shift", fail_values=["A", "c"]),
    GroundTruth(label_field="nothing-here"),
    # No threshold: DuckDB reads the copies beside the metadata, pass/fail values included.
    GroundTruth(label_field="line", label_map={"a": "car"}, no_detection_label="c", pass_field="shift",
                fail_values=["d"]),
]


@pytest.mark.parametrize("setting", SETTINGS, ids=["mapped", "threshold-and-inspection", "unlabelled", "inspection"])
@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
def test_performance_counts(stores: tuple[Store, Store], filters: Filters, setting: GroundTruth) -> None:
    duck, chdb = stores
    for group_field in (None, "lot"):
        answers = [report(store.performance_counts(1, filters, setting, timedelta(hours=1), group_field, 7), setting, 7)
                   for store in (duck, chdb)]
        same(answers[0], answers[1])


# Answered by ClickHouse from the verdict sums of whole hours (`meta_sums.VERDICTS`), the rest
# from the rows: no threshold, a label sent to the "no detection" label, the default bins.
SUMMED = GroundTruth(label_field="line", label_map={"c": "none"}, pass_field="shift", fail_values=["d"])


@pytest.mark.parametrize("filters", FILTERS, ids=IDS)
def test_performance_counts_from_verdict_sums(stores: tuple[Store, Store], filters: Filters) -> None:
    duck, chdb = stores
    for group_field, size in ((None, timedelta(hours=1)), (None, timedelta(days=1)), ("lot", timedelta(hours=1))):
        answers = [report(store.performance_counts(1, filters, SUMMED, size, group_field, DEFAULT_BINS), SUMMED,
                          DEFAULT_BINS) for store in (duck, chdb)]
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
    inspected = report(duck.performance_counts(1, Filters(), SETTINGS[3], timedelta(hours=1), None, 7),
                       SETTINGS[3], 7)["inspection"]
    assert inspected is not None and inspected["inspected"] > 50 and inspected["flagged_and_failed"] > 0


def test_ground_truth_settings_round_trip(stores: tuple[Store, Store]) -> None:
    for store in stores:
        assert store.ground_truth(1, "cars/1") is None
        store.set_ground_truth(1, "cars/1", SETTINGS[1])
        store.set_ground_truth(1, "cars/1", SETTINGS[0])  # the later write wins
        assert store.ground_truth(1, "cars/1") == SETTINGS[0]
        assert store.ground_truth(2, "cars/1") is None


def test_operator_verdicts_measure_accuracy_alike_without_a_setting(stores: tuple[Store, Store]) -> None:
    """Last in this file: it adds verdicts (`ve.feedback`) beside the `line` labels. `correct`
    counts as right and `incorrect` as wrong whatever the model said; `inconclusive` is not counted."""
    duck, chdb = stores
    verdict = {"a": "correct", "b": "incorrect", "c": "inconclusive", "d": "correct", "z": "correct"}
    labelled = duck._cursor().execute(  # type: ignore[attr-defined]
        "SELECT ws, inference_id, field_value FROM metadata WHERE field_name = 'line' ORDER BY ALL").fetchall()
    meta = MetadataRows()
    for ws, inference_id, line in labelled:
        meta.add(ws, inference_id, FEEDBACK_FIELD, verdict[line], BASE_US + 10**12)
    for store in stores:
        store.append(InferenceRows(), meta)
    settings = [feedback_setting(), GroundTruth(label_field=FEEDBACK_FIELD, confidence_threshold=0.5)]
    for setting in settings:
        for filters in FILTERS:
            answers = [report(s.performance_counts(1, filters, setting, timedelta(hours=1), "lot", 7), setting, 7)
                       for s in (duck, chdb)]
            same(answers[0], answers[1])
    counts = duck.performance_counts(1, Filters(), settings[0], timedelta(hours=1), None, 7)
    body = report(counts, settings[0], 7)
    rows = {(ws, i): len(duck.get_inference(ws, i)) for ws, i, _ in labelled}
    right = sum(rows[(ws, i)] for ws, i, line in labelled if ws == 1 and verdict[line] == "correct")
    wrong = sum(rows[(ws, i)] for ws, i, line in labelled if ws == 1 and verdict[line] == "incorrect")
    assert right and wrong
    assert (body["correct"], body["labelled"]) == (right, right + wrong)
    # A wrong verdict expects "not <what the model said>": the confusion matrix names no made-up class.
    assert all(expected == f"not {predicted}" for (expected, predicted) in counts.confusion if expected != predicted)
