"""Measured performance from ground truth attached as metadata, on seeded data with known answers:
accuracy and its confusion cells, coverage, "no detection" expectations, per-factory slices, the
inspection table, calibration, and labels that arrive after a query."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.conftest import Workspace, attach, box, ingest, item

EVER = {"from": "2000-01-01"}


def classified(inference_id: str, cls: str, confidence: float, **extra: Any) -> dict[str, Any]:
    return {"model_id": "paint/1", "inference_id": inference_id,
            "result": {"top": cls, "confidence": confidence,
                       "predictions": [{"class": cls, "confidence": confidence}]}, **extra}


def performance(ws: Workspace, **params: Any) -> dict[str, Any]:
    reply = ws.client.get(f"{ws.api}/performance", params={**EVER, **params})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def label(ws: Workspace, field: str, values: dict[str, str]) -> None:
    by_value: dict[str, list[str]] = {}
    for inference_id, value in values.items():
        by_value.setdefault(value, []).append(inference_id)
    attach(ws, [{"inference_ids": ids, "field_name": field, "field_value": v} for v, ids in by_value.items()])


@pytest.fixture
def paint(ws: Workspace) -> Workspace:
    """A colour classifier: 250 inferences, 200 labelled, 13 of them wrong (8 blue that were
    green, 5 red that were blue), in two factories."""
    items, truth = [], {}
    for i in range(250):
        predicted = ("blue", "red", "green")[i % 3]
        factory = "north" if i % 2 else "south"
        items.append(classified(f"p{i}", predicted, 0.55 + (i % 45) / 100, metadata={"factory": factory}))
        if i < 200:
            truth[f"p{i}"] = predicted
    wrong_blue = [f"p{i}" for i in range(0, 200, 3)][:8]  # predicted blue
    wrong_red = [f"p{i}" for i in range(1, 200, 3)][:5]  # predicted red
    truth.update(dict.fromkeys(wrong_blue, "green"))
    truth.update(dict.fromkeys(wrong_red, "blue"))
    ingest(ws, items)
    label(ws, "color", truth)
    return ws


def test_classifier_accuracy_confusion_and_coverage(paint: Workspace) -> None:
    body = performance(paint, model_id="paint/1", label_field="color")
    assert (body["inferences"], body["labelled"], body["correct"]) == (250, 200, 187)
    assert body["accuracy"] == pytest.approx(0.935)
    assert body["coverage"] == pytest.approx(0.8)
    low, high = body["accuracy_ci95"]
    assert 0.89 < low < 0.935 < high < 0.965

    matrix = body["confusion_matrix"]
    assert matrix["labels"] == ["blue", "green", "red"]
    cells = {(e, p): matrix["counts"][i][j] for i, e in enumerate(matrix["labels"])
             for j, p in enumerate(matrix["labels"])}
    assert cells[("green", "blue")] == 8 and cells[("blue", "red")] == 5
    assert sum(cells.values()) == 200
    assert sum(n for (e, p), n in cells.items() if e != p) == 13
    row = matrix["row_normalised"][matrix["labels"].index("green")]
    assert sum(row) == pytest.approx(1.0)

    per_class = {c["class"]: c for c in body["per_class"]}
    blue = per_class["blue"]
    # Blue predicted 67 times among the labelled (8 of them green); expected 67 - 8 + 5 times.
    assert (blue["predicted"], blue["true_positives"], blue["support"]) == (67, 59, 64)
    assert blue["precision"] == pytest.approx(59 / 67) and blue["recall"] == pytest.approx(59 / 64)
    assert blue["f1"] == pytest.approx(2 * 59 / (67 + 64))


def test_per_factory_slices_and_calibration(paint: Workspace) -> None:
    body = performance(paint, model_id="paint/1", label_field="color", by="meta.factory", bins=5)
    groups = {g["value"]: g for g in body["by_group"]}
    assert set(groups) == {"north", "south"}
    assert groups["north"]["labelled"] + groups["south"]["labelled"] == 200
    assert groups["north"]["correct"] + groups["south"]["correct"] == 187
    # Wrong ones sit on even (south, blue: i = 0, 3, ..., 21 -> 4 even) and odd indices.
    wrong_south = sum(1 for i in list(range(0, 200, 3))[:8] + list(range(1, 200, 3))[:5] if i % 2 == 0)
    assert groups["south"]["labelled"] - groups["south"]["correct"] == wrong_south

    calibration = body["calibration"]
    assert sum(b["labelled"] for b in calibration) == 200
    assert all(0 <= b["from"] < b["to"] <= 1 for b in calibration)
    assert [b["from"] for b in calibration] == sorted(b["from"] for b in calibration)
    assert body["over_time"] and sum(t["labelled"] for t in body["over_time"]) == 200

    # Filters narrow what is counted, like everywhere else.
    north = performance(paint, model_id="paint/1", label_field="color", **{"meta.factory": "north"})
    assert north["labelled"] == groups["north"]["labelled"]


def test_a_label_attached_after_a_query_changes_the_next_answer(paint: Workspace) -> None:
    before = performance(paint, model_id="paint/1", label_field="color")
    label(paint, "color", {"p210": "purple", "p0": "blue"})  # one new (wrong), one corrected (now right)
    after = performance(paint, model_id="paint/1", label_field="color")
    assert after["labelled"] == before["labelled"] + 1
    assert after["correct"] == before["correct"] + 1
    assert "purple" in after["confusion_matrix"]["labels"]


def test_detector_with_expected_no_detection_and_the_inspection_table(ws: Workspace) -> None:
    items = [
        item("d-clean-1", "parts/2"), item("d-clean-2", "parts/2"),  # nothing found, nothing expected
        item("d-hit", "parts/2", predictions=[box("scratch", 0.9), box("dent", 0.6)]),
        item("d-false-alarm", "parts/2", predictions=[box("dent", 0.8)]),
        item("d-missed", "parts/2"),
        item("d-weak", "parts/2", predictions=[box("scratch", 0.2)]),  # below the threshold: not found
    ]
    ingest(ws, items)
    label(ws, "expected", {"d-clean-1": "ok", "d-clean-2": "ok", "d-hit": "scratch", "d-false-alarm": "ok",
                           "d-missed": "dent", "d-weak": "ok"})
    label(ws, "inspection", {"d-clean-1": "passed", "d-clean-2": "passed", "d-hit": "failed",
                             "d-false-alarm": "passed", "d-missed": "FAILED"})
    reply = ws.client.put(f"{ws.api}/ground-truth", params={"model_id": "parts/2"},
                          json={"label_field": "expected", "label_map": {"ok": "none"},
                                "confidence_threshold": 0.5, "pass_field": "inspection"})
    assert reply.status_code == 200, reply.text

    body = performance(ws, model_id="parts/2")  # the model's setting is used
    assert (body["labelled"], body["correct"]) == (6, 4)
    labels = body["confusion_matrix"]["labels"]
    cells = {(e, p): body["confusion_matrix"]["counts"][i][j] for i, e in enumerate(labels)
             for j, p in enumerate(labels) if body["confusion_matrix"]["counts"][i][j]}
    assert cells == {("none", "none"): 3, ("scratch", "scratch"): 1, ("none", "dent"): 1, ("dent", "none"): 1}

    inspection = body["inspection"]
    assert (inspection["flagged_and_failed"], inspection["flagged_and_passed"],
            inspection["missed_failures"], inspection["clear_and_passed"]) == (1, 1, 1, 2)
    assert inspection["precision"] == pytest.approx(0.5) and inspection["recall"] == pytest.approx(0.5)

    # A setting field given in the query wins over the stored one, for this answer only.
    loose = performance(ws, model_id="parts/2", confidence_threshold=0.1)
    assert loose["correct"] == 3  # d-weak now counts as a scratch found where none was expected
    assert ws.client.get(f"{ws.api}/ground-truth", params={"model_id": "parts/2"}).json()["setting"][
        "confidence_threshold"] == 0.5


def test_settings_and_requests_are_validated(ws: Workspace, other: Workspace) -> None:
    api = f"{ws.api}/ground-truth"
    assert ws.client.get(api, params={"model_id": "nope/1"}).json() == {"model_id": "nope/1", "setting": None}
    for bad in ({}, {"label_field": ""}, {"label_field": "x", "confidence_threshold": 2},
                {"label_field": "x", "surprise": 1}, {"label_field": "x\u0000"}):
        reply = ws.client.put(api, params={"model_id": "m/1"}, json=bad)
        assert reply.status_code == 400, bad
        assert "error" in reply.json()
    assert ws.client.get(api, params={"model_id": "m/1"}).json()["setting"] is None  # nothing was kept
    assert ws.client.put(api, json={"label_field": "x"}).status_code == 400  # no model_id
    assert ws.client.put(api, params={"model_id": "m" * 257}, json={"label_field": "x"}).status_code == 400

    perf = f"{ws.api}/performance"
    assert ws.client.get(perf, params={**EVER, "label_field": "x"}).status_code == 400  # no model
    # No label field anywhere: the model is measured by its operator feedback (none yet here).
    unset = ws.client.get(perf, params={**EVER, "model_id": "m/1"})
    assert unset.status_code == 200 and unset.json()["label_field"] == "ve.feedback"
    assert unset.json()["labelled"] == 0
    assert ws.client.get(perf, params={**EVER, "model_id": "m/1", "label_field": "x", "bins": "0"}).status_code == 400
    assert ws.client.get(perf, params={**EVER, "model_id": "m/1", "label_field": "x", "by": "model_id"}
                         ).status_code == 400
    assert ws.client.get(perf, params={**EVER, "model_id": "m/1", "label_field": "x", "nonsense": "1"}
                         ).status_code == 400
    # Another workspace's key is refused, and sees nothing of this one's settings.
    assert other.client.get(perf, params={**EVER, "model_id": "m/1", "label_field": "x"}).status_code == 403
    assert ws.client.put(api, params={"model_id": "m/1"}, json={"label_field": "color"}).status_code == 200
    assert other.client.get(f"{other.api}/ground-truth", params={"model_id": "m/1"}).json()["setting"] is None


def test_a_model_without_labels_answers_nulls_not_errors(ws: Workspace) -> None:
    ingest(ws, [item(f"u{i}", "m/quiet", time_s=0.01) for i in range(3)])
    body = performance(ws, model_id="m/quiet", label_field="expected", to=str(time.time() + 60))
    assert (body["inferences"], body["labelled"], body["accuracy"], body["accuracy_ci95"]) == (3, 0, None, None)
    assert body["confusion_matrix"] == {"labels": [], "counts": [], "row_normalised": []}
