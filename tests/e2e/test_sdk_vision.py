"""`iw.log` with the real `supervision`: Detections (boxes, masks, class names from data or a
list), KeyPoints alone or with their Detections, and a numpy frame measured, encoded and uploaded
by the SDK's thread; and inferwatch not importing supervision when none of its objects is passed."""

from __future__ import annotations

import io
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFilter

import inferwatch
from inferwatch.sdk import vision
from tests.conftest import Workspace, open_workspace
from tests.server import Server

with warnings.catch_warnings():  # supervision says it runs without OpenCV, which it may here
    warnings.simplefilter("ignore")
    import supervision as sv

SRC = Path(__file__).resolve().parents[2] / "src"


def boxes() -> sv.Detections:
    return sv.Detections(
        xyxy=np.array([[10.0, 20.0, 50.0, 80.0], [100.0, 100.0, 140.0, 130.0]]),
        confidence=np.array([0.9, 0.4]), class_id=np.array([0, 2]), tracker_id=np.array([7, 8]),
        data={"class_name": np.array(["person", "forklift"])})


def frame(seed: int = 0, size: tuple[int, int] = (96, 64)) -> np.ndarray:
    """A textured BGR frame (noise has edges to be sharp with)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)


class Unreadable:
    """An `image=` that fails when read as an array."""

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise RuntimeError("camera buffer gone")


def blocks() -> np.ndarray:
    """A BGR frame: blue left half, red right half."""
    out = np.zeros((64, 96, 3), dtype=np.uint8)
    out[:, :48] = (255, 0, 0)
    out[:, 48:] = (0, 0, 255)
    return out


@pytest.fixture(scope="module")
def logged(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Workspace, dict[str, Any]]]:
    """Every kind of call logged through one client, flushed once."""
    with open_workspace(server, "sv") as ws:
        iw = inferwatch.Client(server.url, ws.key, spool_dir=tmp_path_factory.mktemp("spool"), linger_s=0.05)
        ids: dict[str, Any] = {}
        ids["boxes"] = iw.log(boxes(), model_id="yard/1", device_id="cam-1", metadata={"line": "2"},
                              inference_time=0.031)
        plain = sv.Detections(xyxy=np.array([[0.0, 0.0, 10.0, 10.0]]), confidence=np.array([0.5]),
                              class_id=np.array([1]))
        ids["listed"] = iw.log(plain, model_id="yard/1", class_names=["bg", "pallet"])
        mask = np.zeros((1, 64, 96), dtype=bool)
        mask[0, 10:30, 20:60] = True
        ids["masked"] = iw.log(sv.Detections(xyxy=np.array([[20.0, 10.0, 59.0, 29.0]]), mask=mask,
                                             confidence=np.array([0.8]), class_id=np.array([0])),
                               model_id="seg/1", class_names=["spill"])
        points = sv.KeyPoints(xy=np.array([[[30.0, 10.0], [34.0, 40.0], [0.0, 0.0]]], dtype=np.float32),
                              keypoint_confidence=np.array([[0.9, 0.7, 0.0]], dtype=np.float32),
                              class_id=np.array([0]),
                              data={"class_name": np.array(["worker"])})
        ids["keypoints"] = iw.log(points, model_id="pose/1")
        ids["paired"] = iw.log(sv.Detections(xyxy=np.array([[25.0, 5.0, 40.0, 45.0]]), confidence=np.array([0.95]),
                                             class_id=np.array([0]), data={"class_name": np.array(["worker"])}),
                               model_id="pose/1", keypoints=points)
        ids["frame"] = iw.log(boxes(), model_id="yard/1", image=blocks(), metadata={"line": "2"})
        sharp = frame(2)
        blurred = np.asarray(Image.fromarray(sharp).filter(ImageFilter.GaussianBlur(3)))
        ids["sharp"] = iw.log(boxes(), model_id="yard/1", image=sharp)
        ids["blurred"] = iw.log(boxes(), model_id="yard/1", image=blurred)
        dark = np.zeros((64, 96, 3), dtype=np.uint8)
        dark[:, 48:] = (40, 40, 200)  # right half red (BGR), left half black
        ids["dark"] = iw.log({"predictions": []}, model_id="yard/1", image=dark)
        # Not a frame: found out in the background thread (log answered with an id regardless), which
        # drops the image and still sends the inference.
        ids["not-a-frame"] = iw.log(boxes(), model_id="yard/1", image=Unreadable())
        ids["sharp-frame"] = sharp
        assert iw.flush(60)
        ids["counters"] = iw.counters
        iw.close()
        yield ws, ids


def one(ws: Workspace, inference_id: str) -> dict[str, Any]:
    reply = ws.client.get(f"{ws.api}/inferences/{inference_id}")
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_detections_boxes_and_class_names(logged: tuple[Workspace, dict[str, Any]]) -> None:
    ws, ids = logged
    got = one(ws, ids["boxes"])
    assert (got["model_id"], got["device_id"], got["inference_time"]) == ("yard/1", "cam-1", 0.031)
    assert got["metadata"] == {"line": "2"}
    assert got["task"] == "object-detection"
    found = sorted((p["class"], p["class_id"], p["x"], p["y"], p["width"], p["height"], p["confidence"])
                   for p in got["predictions"])
    assert found == [("forklift", 2, 120.0, 115.0, 40.0, 30.0, 0.4), ("person", 0, 30.0, 50.0, 40.0, 60.0, 0.9)]
    listed = one(ws, ids["listed"])["predictions"]
    assert [(p["class"], p["class_id"]) for p in listed] == [("pallet", 1)]


def test_masks_become_polygons(logged: tuple[Workspace, dict[str, Any]]) -> None:
    ws, ids = logged
    got = one(ws, ids["masked"])
    assert got["task"] == "instance-segmentation"
    [prediction] = got["predictions"]
    assert prediction["class"] == "spill"
    xs = [p["x"] for p in prediction["points"]]
    ys = [p["y"] for p in prediction["points"]]
    assert (min(xs), max(xs), min(ys), max(ys)) == (20, 59, 10, 29)  # the mask's outline


def test_keypoints_alone_and_with_their_detections(logged: tuple[Workspace, dict[str, Any]]) -> None:
    ws, ids = logged
    alone = one(ws, ids["keypoints"])
    assert alone["task"] == "keypoint-detection"
    [prediction] = alone["predictions"]
    assert prediction["class"] == "worker"
    # The unseen third keypoint (0, 0 with confidence 0) is left out; the box spans the seen ones.
    assert [(k["x"], k["y"], k["class_id"]) for k in prediction["keypoints"]] == [(30, 10, 0), (34, 40, 1)]
    assert (prediction["x"], prediction["y"], prediction["width"], prediction["height"]) == (32, 25, 4, 30)
    assert prediction["confidence"] == pytest.approx(0.8, abs=1e-6)
    paired = one(ws, ids["paired"])["predictions"][0]
    assert (paired["x"], paired["y"], paired["confidence"]) == (32.5, 25.0, 0.95)
    assert len(paired["keypoints"]) == 2


def test_the_frame_is_uploaded_with_its_figures(logged: tuple[Workspace, dict[str, Any]]) -> None:
    ws, ids = logged
    got = one(ws, ids["frame"])
    assert got["image"] == {"width": 96, "height": 64}
    assert got["metadata"]["line"] == "2"
    assert set(vision.QUALITY_FIELDS) <= set(got["metadata"])
    image = ws.client.get(f"{ws.api}/inferences/{ids['frame']}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(image.content)) as img:
        assert img.size == (96, 64)
        # BGR in, RGB stored: blue on the left, red on the right.
        stored = np.asarray(img.convert("RGB"), dtype=np.float64)
    assert np.abs(stored[:, :40] - (0, 0, 255)).max() < 40
    assert np.abs(stored[:, 56:] - (255, 0, 0)).max() < 40
    assert ids["counters"].images_sent == 4 and ids["counters"].images_dropped == 1


def test_a_bad_frame_costs_its_image_not_its_inference(logged: tuple[Workspace, dict[str, Any]]) -> None:
    ws, ids = logged
    assert isinstance(ids["not-a-frame"], str)
    got = one(ws, ids["not-a-frame"])
    assert len(got["predictions"]) == 2
    assert not set(vision.QUALITY_FIELDS) & set(got["metadata"])
    assert ws.client.get(f"{ws.api}/inferences/{ids['not-a-frame']}/image").status_code == 404


def test_figures_say_what_happened_to_the_camera(logged: tuple[Workspace, dict[str, Any]]) -> None:
    ws, ids = logged

    def figures(name: str) -> dict[str, float]:
        meta = one(ws, ids[name])["metadata"]
        # Sent and answered as JSON numbers (typed metadata), not as their text.
        assert all(type(meta[f]) is float for f in vision.QUALITY_FIELDS), meta
        return {f: meta[f] for f in vision.QUALITY_FIELDS}

    sharp, blurred, dark = figures("sharp"), figures("blurred"), figures("dark")
    assert blurred["image_sharpness"] < sharp["image_sharpness"] / 10
    assert sharp["image_brightness"] == pytest.approx(vision.quality(ids["sharp-frame"])["image_brightness"], rel=1e-5)
    # Half black, half (R=200, G=40, B=40): luma 0 and 88 of 255.
    assert dark["image_brightness"] == pytest.approx(88 / 255 / 2, abs=0.002)
    assert dark["image_color_cast"] == pytest.approx(80 / 255, abs=0.002)  # channel means 100, 20, 20
    assert dark["image_saturated"] == pytest.approx(0.5, abs=0.001)  # the black half is clipped
    assert sharp["image_color_cast"] < 0.05


def test_supervision_is_imported_only_when_its_objects_are_passed(server: Server, tmp_path: Path) -> None:
    with open_workspace(server, "nosv") as ws:
        script = textwrap.dedent(f"""
            import sys
            import numpy as np
            import inferwatch
            iw = inferwatch.Client({server.url!r}, {ws.key!r}, spool_dir={str(tmp_path / "spool")!r})
            iw.log({{"predictions": [{{"x": 1, "y": 1, "width": 2, "height": 2, "class": "a", "confidence": 0.5}}]}},
                   model_id="m/1")
            iw.log({{"predictions": []}}, model_id="m/1", image=np.zeros((8, 8, 3), dtype=np.uint8))
            assert iw.flush(30)
            assert iw.counters.sent == 2 and iw.counters.images_sent == 1, iw.counters
            print("supervision" in sys.modules)
        """)
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                              env={"PYTHONPATH": str(SRC), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "False"
