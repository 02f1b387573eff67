"""Roboflow's real Vision Events workflow blocks writing to inferwatch: "Roboflow Vision Events" in
cloud mode (with `API_BASE_URL` alone pointing it here; waiting and fire-and-forget, with input and
output images and without) and in event-store mode (`/v2/events`, `X-API-Key`), and a bundle the
"Write Vision Event Bundle" block wrote, uploaded to `/vision-events/bundle`.

The blocks are `roboflow-workflows` 0.2.13, unchanged, installed with the rest of
tests/clients/requirements-inference.txt by `make client-deps`; tests/clients/workflow_blocks_driver.py
runs them in a subprocess configured by the environment as the inference server is. What was stored
is read back through inferwatch's own API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace, list_all
from tests.e2e.test_real_inference import CLIENTS, INSTALL, ROOT
from tests.server import Server

pytestmark = pytest.mark.process  # drives a server process from a client process


def _drive(server: Server, ws: Workspace, use_case: str, bundles: Path) -> dict[str, Any]:
    assert (INSTALL / "roboflow_workflows").is_dir(), (
        f"roboflow-workflows is not installed in {INSTALL}: run `make test` (or `make client-deps`)")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": os.pathsep.join([str(INSTALL), str(CLIENTS / "stubs")]),
        "PYTHONDONTWRITEBYTECODE": "1",
        "API_BASE_URL": server.url,
        "EVENT_INGESTION_API_KEY": ws.key,
        "EVENT_STORE_URL": server.url,
        "INFERWATCH_KEY": ws.key,
        "USE_CASE": use_case,
        "BUNDLE_DIR": str(bundles),
        "MODEL_CACHE_DIR": str(bundles.parent / "inference-cache"),
    }
    done = subprocess.run([sys.executable, str(CLIENTS / "workflow_blocks_driver.py")],
                          env=env, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-5000:]
    report: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return report


def _events(ws: Workspace, use_case: str) -> dict[str, dict[str, Any]]:
    """The use case's events by the `run` each driver call stamped in its custom metadata."""
    reply = ws.client.post("/vision-events/query", json={"useCaseId": use_case, "limit": 100})
    assert reply.status_code == 200, reply.text
    return {e["customMetadata"]["run"]: e for e in reply.json()["events"]}


def _image(ws: Workspace, source_id: str) -> bytes:
    reply = ws.client.get(f"{ws.api}/images/{source_id}")
    assert reply.status_code == 200, source_id
    assert reply.headers["content-type"] == "image/jpeg"
    return reply.content


def test_the_vision_events_blocks_write_events_inferences_and_images(
        server: Server, ws: Workspace, tmp_path: Path) -> None:
    reply = ws.client.post("/vision-events/use-cases", json={"name": "press line"})
    assert reply.status_code == 201, reply.text
    use_case = reply.json()["id"]
    bundles = tmp_path / "bundles"
    report = _drive(server, ws, use_case, bundles)
    assert report["api_base_url"] == server.url

    # The block's own verdicts: the waiting sends name their event, the background one cannot.
    for run in ("cloud_wait", "cloud_no_image", "cloud_segmentation", "cloud_keypoints", "event_store", "bundle",
                "bundle_no_use_case"):
        assert report[run]["error_status"] is False, report[run]
        assert report[run]["event_id"], report[run]
    assert report["cloud_background"] == {"error_status": False, "throttling_status": False, "event_id": "",
                                          "message": "Vision event sent in background task"}

    # The bundles, as the block wrote them, uploaded as the raw body: one names its use case, the
    # other takes it from ?useCaseId=.
    for run, params in (("bundle", {}), ("bundle_no_use_case", {"useCaseId": use_case})):
        path = Path(report[run]["bundle_path"])
        assert path.parent == bundles and path.name.endswith(".tar.gz")
        reply = ws.client.post("/vision-events/bundle", content=path.read_bytes(), params=params,
                               headers={"Content-Type": "application/gzip"})
        assert reply.status_code == 201, reply.text
        assert reply.json()["eventId"] == report[run]["event_id"]
        assert all(m.startswith("images/") for m in reply.json()["sourceIds"])

    events = _events(ws, use_case)
    assert set(events) == {"cloud-wait", "cloud-background", "cloud-no-image", "cloud-segmentation",
                           "cloud-keypoints", "event-store", "bundle", "bundle-query-use-case"}
    assert events["cloud-wait"]["eventId"] == report["cloud_wait"]["event_id"]
    assert events["event-store"]["eventId"] == report["event_store"]["event_id"]
    assert events["bundle"]["eventId"] == report["bundle"]["event_id"]

    # Cloud mode, waiting: the output image as sourceId, the input as inputSourceId, both stored.
    waited = events["cloud-wait"]
    assert waited["eventType"] == "quality_check"
    assert waited["eventData"] == {"result": "fail", "externalId": "lot-7"}
    assert waited["customMetadata"] == {"line": "A", "temperature": 151.5, "shift_ok": True, "run": "cloud-wait"}
    [image] = waited["images"]
    assert image["label"] == "workflow" and image["sourceId"] != image["inputSourceId"]
    assert [d["class"] for d in image["objectDetections"]] == ["scratch", "dent"]
    for which in ("sourceId", "inputSourceId"):
        assert _image(ws, image[which])[:2] == b"\xff\xd8"
    # Event store and bundles: the images they carried, stored and named by their ids.
    for run in ("event-store", "bundle"):
        [carried] = events[run]["images"]
        assert "base64Image" not in carried and "file" not in carried
        for which in ("sourceId", "inputSourceId"):
            assert _image(ws, carried[which])[:2] == b"\xff\xd8"
    assert events["bundle-query-use-case"]["useCaseId"] == use_case
    assert events["cloud-background"]["eventData"] == {"location": "shelf-3", "itemCount": 12, "itemType": "box"}
    assert events["cloud-no-image"]["images"] == []

    # Each image is an inference of the use case's model, its boxes and metadata with it.
    rows = {r["inference_id"]: r for r in list_all(ws)}
    with_images = ("cloud-wait", "cloud-background", "cloud-segmentation", "cloud-keypoints", "event-store",
                   "bundle", "bundle-query-use-case")
    assert set(rows) == {events[run]["eventId"] for run in with_images}
    waited_row = rows[waited["eventId"]]
    assert waited_row["model_id"] == f"vision-events/{use_case}"
    assert waited_row["image"] == {"width": 320, "height": 240}
    assert (waited_row["source_id"], waited_row["input_source_id"]) == (image["sourceId"], image["inputSourceId"])
    boxes = sorted(waited_row["predictions"], key=lambda p: -p["confidence"])
    assert [(p["class"], p["x"], p["y"], p["width"], p["height"]) for p in boxes] == [
        ("scratch", 130.0, 80.0, 140.0, 80.0), ("dent", 20.0, 30.0, 20.0, 40.0)]
    assert waited_row["metadata"]["temperature"] == 151.5
    assert waited_row["metadata"]["ve.data.result"] == "fail"
    assert rows[events["cloud-background"]["eventId"]]["predictions"][0]["class"] == "blue"
    assert rows[events["bundle"]["eventId"]]["metadata"]["temperature"] == 99
    assert len(rows[events["event-store"]["eventId"]]["predictions"]) == 2
    # The mask as the polygon the block traced, the keypoints with their ids.
    [segmented] = events["cloud-segmentation"]["images"][0]["instanceSegmentations"]
    assert segmented["class"] == "crack" and len(segmented["points"]) >= 3
    segmented_row = rows[events["cloud-segmentation"]["eventId"]]
    assert segmented_row["task"] == "instance-segmentation"
    assert len(segmented_row["predictions"][0]["points"]) == len(segmented["points"])
    keypoints_row = rows[events["cloud-keypoints"]["eventId"]]
    assert keypoints_row["task"] == "keypoint-detection"
    [person] = keypoints_row["predictions"]
    assert [(k["x"], k["y"], k["class_id"]) for k in person["keypoints"]] == [
        (90.0, 40.0, 0), (80.0, 120.0, 5), (100.0, 200.0, 11)]

    # Numbers stay numbers: the query's range filter finds the cloud event alone.
    reply = ws.client.post("/vision-events/query", json={"useCaseId": use_case, "customMetadataFilters": [
        {"field": "temperature", "operator": "gt", "value": 150}]})
    assert [e["eventId"] for e in reply.json()["events"]] == [waited["eventId"]]
