"""Drift over HTTP on synthetic data with a known shift: a class that disappears, confidences
that drop by 0.2, against the same distribution drawn again (which must not be flagged)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from tests.conftest import Workspace, ingest

REFERENCE = "2026-01-01T00:00:00Z/2026-01-01T01:00:00Z"
CURRENT = "2026-01-01T01:00:00Z/2026-01-01T02:00:00Z"
N = 400


def window(rng: random.Random, prefix: str, hour: int, *, classes: tuple[str, ...], shift: float = 0.0,
           model_id: str = "parts/1", **extra: Any) -> list[dict[str, Any]]:
    """N detections results spread over one hour, each with 1-3 boxes of the given classes."""
    items = []
    for i in range(N):
        boxes = []
        for _ in range(rng.choice((1, 2, 3))):
            confidence = min(1.0, max(0.0, rng.gauss(0.8, 0.08) - shift))
            w, h = rng.uniform(40, 80), rng.uniform(40, 80)
            boxes.append({"x": 100.0, "y": 100.0, "width": w, "height": h,
                          "class": rng.choice(classes), "confidence": round(confidence, 4)})
        items.append({"model_id": model_id, "inference_id": f"{prefix}-{i}",
                      "timestamp": f"2026-01-01T{hour:02d}:{i * 3600 // N // 60:02d}:{i * 3600 // N % 60:02d}Z",
                      "result": {"time": round(rng.uniform(0.02, 0.04), 5), "image": {"width": 640, "height": 480},
                                 "predictions": boxes}, **extra})
    return items


def drift(ws: Workspace, **params: Any) -> dict[str, Any]:
    reply = ws.client.get(f"{ws.api}/drift", params={"reference": REFERENCE, "current": CURRENT, **params})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def by_feature(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f["feature"]: f for f in body["features"]}


def test_stable_data_is_not_flagged(ws: Workspace) -> None:
    rng = random.Random(1)
    ingest(ws, window(rng, "ref", 0, classes=("scratch", "dent", "chip")))
    ingest(ws, window(rng, "cur", 1, classes=("scratch", "dent", "chip")))
    body = drift(ws, model_id="parts/1")
    assert (body["reference_inferences"], body["current_inferences"]) == (N, N)
    features = by_feature(body)
    assert body["drifted"] is False, [f for f in body["features"] if f["drifted"]]
    for name in ("confidence", "detections", "box_size", "aspect_ratio", "inference_time", "class_mix"):
        assert features[name]["enough_data"] is True
        assert features[name]["score"] < 0.1
    ks = next(t for t in features["confidence"]["tests"] if t["test"] == "ks")
    assert ks["p_value"] > 0.01


def test_confidence_drop_and_vanished_class_are_flagged(ws: Workspace) -> None:
    rng = random.Random(2)
    ingest(ws, window(rng, "ref", 0, classes=("scratch", "dent", "chip")))
    ingest(ws, window(rng, "cur", 1, classes=("scratch", "dent"), shift=0.2))
    body = drift(ws, model_id="parts/1")
    features = by_feature(body)
    assert body["drifted"] is True
    confidence = features["confidence"]
    assert confidence["drifted"] is True
    psi, ks = confidence["tests"]
    assert psi["test"] == "psi" and psi["score"] >= psi["threshold"] == 0.2
    assert ks["test"] == "ks" and ks["p_value"] < 1e-6 and ks["score"] > 0.5
    assert confidence["current"]["mean"] == pytest.approx(confidence["reference"]["mean"] - 0.2, abs=0.02)
    assert len(confidence["reference"]["histogram"]) == len(confidence["current"]["histogram"]) == 10
    mix = features["class_mix"]
    assert mix["drifted"] is True
    assert mix["classes"] == ["chip", "dent", "scratch"]
    assert mix["current"]["histogram"][0] == 0 and mix["reference"]["histogram"][0] > 0
    js = next(t for t in mix["tests"] if t["test"] == "jensen_shannon")
    assert js["score"] >= js["threshold"]
    # Geometry and time were drawn the same: not flagged.
    for name in ("box_size", "aspect_ratio", "inference_time", "detections"):
        assert features[name]["drifted"] is False, features[name]


def test_slices_reference_modes_and_errors(ws: Workspace) -> None:
    rng = random.Random(3)
    # Canada drifts, Poland does not; the model as a whole shows Canada's half of the shift.
    ingest(ws, window(rng, "ref-ca", 0, classes=("a", "b"), metadata={"site": "canada"}))
    ingest(ws, window(rng, "ref-pl", 0, classes=("a", "b"), metadata={"site": "poland"}))
    ingest(ws, window(rng, "cur-ca", 1, classes=("a", "b"), shift=0.3, metadata={"site": "canada"}))
    ingest(ws, window(rng, "cur-pl", 1, classes=("a", "b"), metadata={"site": "poland"}))
    assert by_feature(drift(ws, model_id="parts/1", **{"meta.site": "canada"}))["confidence"]["drifted"] is True
    assert drift(ws, model_id="parts/1", **{"meta.site": "poland"})["drifted"] is False
    # A rolling reference: the hour before the current window is the same as REFERENCE here.
    rolling = drift(ws, model_id="parts/1", reference="1h", **{"meta.site": "canada"})
    assert rolling["reference"] == {"from": "2026-01-01T00:00:00Z", "to": "2026-01-01T01:00:00Z"}
    assert rolling["reference_inferences"] == N
    previous = drift(ws, model_id="parts/1", reference="previous")
    assert previous["reference"]["from"] == "2026-01-01T00:00:00Z"
    # No data in a window: reported, never flagged.
    empty = drift(ws, model_id="nobody/1")
    assert empty["drifted"] is False and empty["current_inferences"] == 0
    for bad in ({"model_id": "parts/1", "current": "soon"}, {"reference": "1h"},
                {"model_id": "parts/1", "from": "2026-01-01"}, {"model_id": "parts/1", "limit": "0"},
                {"model_id": "parts/1", "current": "2026-01-02/2026-01-01"}):
        reply = ws.client.get(f"{ws.api}/drift", params={"current": CURRENT, **bad})
        assert reply.status_code == 400, (bad, reply.text)


def test_numeric_metadata_drifts_like_any_feature(ws: Workspace) -> None:
    """A camera's sharpness (sent as a number) falls tenfold while the model's answers hold:
    `meta.image_sharpness` drifts, a steady number does not, and a string that reads as a
    number (`line`, as Roboflow's scripts send every value) is no feature."""
    rng = random.Random(5)
    classes = ("scratch", "dent")
    for prefix, hour, mean in (("qref", 0, 400.0), ("qcur", 1, 40.0)):
        items = window(rng, prefix, hour, classes=classes, model_id="cam/3")
        for it in items:
            it["metadata"] = {"image_sharpness": round(rng.gauss(mean, mean / 10), 3),
                              "image_brightness": round(rng.gauss(0.5, 0.05), 4), "line": "2"}
        ingest(ws, items)
    body = drift(ws, model_id="cam/3")
    features = by_feature(body)
    assert {f for f in features if f.startswith("meta.")} == {"meta.image_sharpness", "meta.image_brightness"}
    sharpness = features["meta.image_sharpness"]
    assert sharpness["drifted"] is True and sharpness["enough_data"] is True
    assert (sharpness["reference"]["n"], sharpness["current"]["n"]) == (N, N)
    assert sharpness["current"]["mean"] == pytest.approx(40, rel=0.05)
    assert features["meta.image_brightness"]["drifted"] is False
    assert features["confidence"]["drifted"] is False and body["drifted"] is True
    # A metadata filter narrows the numbers with the rest.
    other_line = by_feature(drift(ws, model_id="cam/3", **{"meta.line": "1"}))
    assert other_line["confidence"]["current"]["n"] == 0 and "meta.image_sharpness" not in other_line
