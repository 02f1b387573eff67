"""The arithmetic of measured performance: Wilson intervals and per-class figures from counts."""

from __future__ import annotations

import pytest

from inferwatch.query.performance import Counts, GroundTruth, report, wilson


def test_wilson_interval_known_values() -> None:
    assert wilson(0, 0) is None
    low, high = wilson(5, 10) or (0.0, 0.0)
    assert (low, high) == (pytest.approx(0.2366, abs=1e-4), pytest.approx(0.7634, abs=1e-4))
    low, high = wilson(0, 10) or (1.0, 1.0)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)  # never below 0, unlike the normal one
    low, high = wilson(10, 10) or (0.0, 0.0)
    assert low == pytest.approx(0.7225, abs=1e-4) and high == pytest.approx(1.0)


def test_report_from_counts() -> None:
    counts = Counts(
        inferences=10,
        confusion={("cat", "cat"): 3, ("cat", "dog"): 1, ("dog", "dog"): 2, ("none", "cat"): 1},
        over_time=[("2026-01-01T00:00:00Z", 7, 5)], by_group=[], calibration=[(9, 7, 5, 0.95)],
        inspection={(True, True): 4, (False, True): 1, (True, False): 2},
    )
    body = report(counts, GroundTruth(label_field="truth", pass_field="check"), 10)
    assert (body["labelled"], body["correct"], body["coverage"]) == (7, 5, 0.7)
    assert body["confusion_matrix"]["labels"] == ["cat", "dog", "none"]
    assert body["confusion_matrix"]["counts"] == [[3, 1, 0], [0, 2, 0], [1, 0, 0]]
    per_class = {c["class"]: c for c in body["per_class"]}
    assert per_class["cat"]["precision"] == pytest.approx(3 / 4) and per_class["cat"]["recall"] == pytest.approx(3 / 4)
    assert per_class["dog"]["precision"] == pytest.approx(2 / 3) and per_class["dog"]["recall"] == 1.0
    assert per_class["none"]["precision"] is None and per_class["none"]["recall"] == 0.0
    assert body["calibration"] == [{"from": 0.9, "to": 1.0, "labelled": 7, "correct": 5,
                                    "accuracy": pytest.approx(5 / 7), "avg_confidence": 0.95}]
    inspection = body["inspection"]
    assert inspection["precision"] == pytest.approx(4 / 6) and inspection["recall"] == pytest.approx(0.8)
