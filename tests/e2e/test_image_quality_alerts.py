""""Camera 3 went blurry" fires before the model notices: the real SDK logs frames from two
cameras (it measures them in its thread and sends the figures as numbers), camera 3's lens then
blurs (a box blur), and alert rules on camera 3's `image_sharpness` (its average, and its drift
against the half hour before) go from ok to critical, while camera 1's rule and a rule on the
model's confidence, which did not change, stay ok."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import inferwatch
from tests.conftest import Workspace, open_workspace
from tests.server import Server

pytestmark = pytest.mark.process  # the SDK against a real server

MODEL = "yard/1"
SHARP = 40  # frames of each camera before camera 3 blurs
BLURRED = 160


def scene(rng: np.random.Generator) -> np.ndarray:
    """A textured BGR frame (a yard full of edges)."""
    return rng.integers(0, 256, size=(120, 160, 3), dtype=np.uint8)


def box_blur(frame: np.ndarray, k: int = 7) -> np.ndarray:
    """The frame through a k x k box filter: what a lens out of focus does to it."""
    pad = k // 2
    padded = np.pad(frame.astype(np.float32), ((pad, pad), (pad, pad), (0, 0)), mode="edge")
    h, w = frame.shape[:2]
    out = np.zeros(frame.shape, dtype=np.float32)
    for dy in range(k):
        for dx in range(k):
            out += padded[dy:dy + h, dx:dx + w]
    return (out / (k * k)).round().astype(np.uint8)


def result() -> dict[str, Any]:
    """The model's answer, the same for every frame: its confidence does not see the blur."""
    return {"predictions": [{"x": 80.0, "y": 60.0, "width": 30.0, "height": 20.0, "class": "pallet",
                             "confidence": 0.9}]}


def create(ws: Workspace, rule: dict[str, Any]) -> str:
    reply = ws.client.post(f"{ws.api}/alerts", json=rule)
    assert reply.status_code == 201, reply.text
    return str(reply.json()["id"])


def states(server: Server, ws: Workspace) -> dict[str, dict[str, Any]]:
    reply = server.admin("POST", "/alerts/evaluate")
    assert reply.status_code == 200, reply.text
    return {a["id"]: a for a in ws.client.get(f"{ws.api}/alerts").json()["alerts"]}


def test_camera_3_going_blurry_fires_an_alert_before_the_model_notices(server: Server, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    with open_workspace(server, "quality") as ws:
        iw = inferwatch.Client(server.url, ws.key, spool_dir=tmp_path / "spool", linger_s=0.05)
        try:
            # Camera 3, sharp, 45 to 32 minutes ago (the half hour before the drift rule's window);
            # camera 1, sharp, now.
            past = time.time() - 45 * 60
            for i in range(SHARP):
                iw.log(result(), MODEL, device_id="camera-3", timestamp=past + i * 20, image=scene(rng))
                iw.log(result(), MODEL, device_id="camera-1", image=scene(rng))
            assert iw.flush(60)
            reply = ws.client.get(f"{ws.api}/stats", params={"numeric": "meta.image_sharpness",
                                                             "device_id": "camera-3", "from": "2020-01-01T00:00:00Z"})
            assert reply.status_code == 200, reply.text
            baseline = reply.json()["numeric"]
            assert baseline["count"] == SHARP and baseline["avg"] > 1000

            # Thresholds from the camera's own baseline, as an operator sets them.
            def average(device: str) -> dict[str, Any]:
                return {"name": f"{device} sharpness", "metric": "metadata_average", "field": "image_sharpness",
                        "device_id": device, "condition": "below", "warning": baseline["avg"] / 2,
                        "critical": baseline["avg"] / 4, "window_s": 3600}

            camera3, camera1 = create(ws, average("camera-3")), create(ws, average("camera-1"))
            drifting = create(ws, {"name": "camera-3 sharpness drift", "metric": "drift_score", "model_id": MODEL,
                                   "device_id": "camera-3", "drift_feature": "meta.image_sharpness",
                                   "condition": "above", "warning": 0.1, "critical": 0.2, "window_s": 1800})
            confidence = create(ws, {"name": "camera-3 confidence", "metric": "avg_confidence",
                                     "device_id": "camera-3", "condition": "below", "warning": 0.5,
                                     "window_s": 3600})
            before = states(server, ws)
            assert {before[r]["state"] for r in (camera3, camera1, drifting, confidence)} == {"ok"}
            assert before[camera3]["value"] == pytest.approx(baseline["avg"])
            assert before[drifting]["value"] is None  # nothing from camera 3 in the last half hour yet

            # Camera 3's lens blurs; the model still answers as confidently.
            for _ in range(BLURRED):
                iw.log(result(), MODEL, device_id="camera-3", image=box_blur(scene(rng)))
            assert iw.flush(60)
            assert iw.counters.images_dropped == 0
        finally:
            iw.close()

        after = states(server, ws)
        assert after[camera3]["state"] == "critical"
        assert after[camera3]["value"] < baseline["avg"] / 4
        assert after[drifting]["state"] == "critical" and after[drifting]["value"] > 0.2
        assert after[camera1]["state"] == "ok" and after[camera1]["value"] > baseline["avg"] / 2
        assert after[confidence]["state"] == "ok" and after[confidence]["value"] == pytest.approx(0.9)
        history = ws.client.get(f"{ws.api}/alerts/history", params={"rule_id": camera3}).json()["events"]
        assert [(e["previous"], e["state"]) for e in history] == [("ok", "critical")]

        # The drift page says the same of the figure, and nothing of the model's answers.
        reply = ws.client.get(f"{ws.api}/drift", params={"model_id": MODEL, "device_id": "camera-3",
                                                         "current": "30m"})
        assert reply.status_code == 200, reply.text
        features = {f["feature"]: f for f in reply.json()["features"]}
        assert features["meta.image_sharpness"]["drifted"] is True
        assert features["confidence"]["drifted"] is False
