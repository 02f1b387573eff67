"""Drives Roboflow's own Vision Events workflow blocks (`roboflow-workflows` 0.2.13, what `inference`
1.8.3 pins) against a running inferwatch (run as a subprocess).

The blocks are the package's own classes, unchanged, their `run()` called as the workflow engine
calls it (the engine itself, which compiles a workflow definition and loads every block's model
machinery, is not needed to run one block): `roboflow_core/roboflow_vision_events@v1` in cloud
mode (its base URL is the package's `platform.api_base_url`, which the inference server's
`inference.core` fills from `API_BASE_URL` at import, as here) and in event-store mode, and
`roboflow_core/vision_event_bundle@v1`, which writes a .tar.gz the test then uploads. The inputs
are what a model step hands them: `WorkflowImageData` frames and supervision `Detections` or a
classification dict.

Configured by the environment: API_BASE_URL, EVENT_INGESTION_API_KEY (read by the block itself in
event-store mode), INFERWATCH_KEY (the workflow request's api_key), USE_CASE, EVENT_STORE_URL,
BUNDLE_DIR. Prints what each run returned, as JSON.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
import types
from concurrent.futures import ThreadPoolExecutor
from typing import Any


def _skip_package_inits() -> None:
    """`inference` and `inference_models` import their model loaders (torch) at the top; the
    blocks need neither, only `inference.core` (which installs the workflows configuration)."""
    for name in ("inference", "inference_models"):
        spec = importlib.machinery.PathFinder.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"{name} is not installed (make test installs tests/clients/requirements-inference.txt)")
        module = types.ModuleType(name)
        module.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = module


def main() -> None:
    _skip_package_inits()
    import inference.core  # noqa: F401  - hands roboflow_workflows the server's configuration (API_BASE_URL)
    import numpy as np
    import supervision as sv
    from inference.core.interfaces.roboflow_platform_client import SERVER_PLATFORM_CLIENT
    from roboflow_workflows.core_steps.sinks.roboflow.vision_events.v1 import RoboflowVisionEventsBlockV1
    from roboflow_workflows.core_steps.sinks.roboflow.vision_events_bundle.v1 import VisionEventBundleSinkBlockV1
    from roboflow_workflows.environment import API_BASE_URL
    from roboflow_workflows.execution_engine.entities.base import ImageParentMetadata, WorkflowImageData

    key = os.environ["INFERWATCH_KEY"]
    use_case = os.environ["USE_CASE"]

    def frame(colour: tuple[int, int, int], name: str) -> WorkflowImageData:
        pixels = np.zeros((240, 320, 3), dtype=np.uint8)
        pixels[:, :] = colour
        pixels[40:120, 60:200] = (255, 255, 255)
        return WorkflowImageData(parent_metadata=ImageParentMetadata(parent_id=name), numpy_image=pixels)

    boxes = sv.Detections(
        xyxy=np.array([[60.0, 40.0, 200.0, 120.0], [10.0, 10.0, 30.0, 50.0]]),
        confidence=np.array([0.91, 0.42]), class_id=np.array([0, 1]),
        data={"class_name": np.array(["scratch", "dent"])})
    classification = {"top": "blue", "confidence": 0.88, "predictions": [
        {"class": "blue", "class_id": 0, "confidence": 0.88}, {"class": "red", "class_id": 1, "confidence": 0.12}]}

    pool = ThreadPoolExecutor(max_workers=2)

    def cloud(fire_and_forget: bool) -> RoboflowVisionEventsBlockV1:
        return RoboflowVisionEventsBlockV1(api_key=key, background_tasks=None,
                                           thread_pool_executor=pool if fire_and_forget else None,
                                           platform_client=SERVER_PLATFORM_CLIENT)

    results: dict[str, Any] = {"api_base_url": API_BASE_URL}
    # Cloud mode, waiting: both images uploaded (output then input), then the event.
    results["cloud_wait"] = cloud(False).run(
        input_image=frame((20, 40, 60), "cam-1"), output_image=frame((200, 40, 60), "cam-1-annotated"),
        predictions=boxes, event_type="quality_check", solution=use_case,
        custom_metadata={"line": "A", "temperature": 151.5, "shift_ok": True, "run": "cloud-wait"},
        fire_and_forget=False, disable_sink=False, cooldown_seconds=0, qc_result="fail", external_id="lot-7")
    # Cloud mode, fire and forget: the block answers at once and sends from the thread pool.
    results["cloud_background"] = cloud(True).run(
        input_image=frame((90, 90, 90), "cam-2"), output_image=None, predictions=classification,
        event_type="inventory_count", solution=use_case, custom_metadata={"run": "cloud-background"},
        fire_and_forget=True, disable_sink=False, location="shelf-3", item_count=12, item_type="box")
    # Cloud mode without images: an event of its own.
    results["cloud_no_image"] = cloud(False).run(
        input_image=None, output_image=None, predictions=None, event_type="safety_alert", solution=use_case,
        custom_metadata={"run": "cloud-no-image"}, fire_and_forget=False, disable_sink=False,
        alert_type="no_hardhat", severity="high", alert_description="zone 4")
    # Masks become instance segmentations (the block traces the polygon), keypoints keypoints.
    mask = np.zeros((1, 240, 320), dtype=bool)
    mask[0, 50:150, 100:220] = True
    results["cloud_segmentation"] = cloud(False).run(
        input_image=None, output_image=frame((60, 60, 160), "cam-6"),
        predictions=sv.Detections(xyxy=np.array([[100.0, 50.0, 220.0, 150.0]]), mask=mask,
                                  confidence=np.array([0.8]), class_id=np.array([0]),
                                  data={"class_name": np.array(["crack"])}),
        event_type="quality_check", solution=use_case, custom_metadata={"run": "cloud-segmentation"},
        fire_and_forget=False, disable_sink=False, cooldown_seconds=0, qc_result="fail")
    results["cloud_keypoints"] = cloud(False).run(
        input_image=frame((60, 160, 60), "cam-7"), output_image=None,
        predictions=sv.Detections(
            xyxy=np.array([[40.0, 20.0, 140.0, 220.0]]), confidence=np.array([0.77]), class_id=np.array([0]),
            data={"class_name": np.array(["person"]),
                  "keypoints_xy": np.array([[[90.0, 40.0], [80.0, 120.0], [100.0, 200.0]]]),
                  "keypoints_class_id": np.array([[0, 5, 11]]),
                  "keypoints_class_name": np.array([["nose", "left_hip", "left_ankle"]])}),
        event_type="safety_alert", solution=use_case, custom_metadata={"run": "cloud-keypoints"},
        fire_and_forget=False, disable_sink=False, cooldown_seconds=0, alert_type="no_hardhat", severity="low")
    # Event-store mode: the edge event store's /v2/events, images as base64.
    results["event_store"] = RoboflowVisionEventsBlockV1(
        api_key=None, background_tasks=None, thread_pool_executor=None).run(
        input_image=frame((10, 120, 10), "cam-3"), output_image=frame((10, 220, 10), "cam-3-annotated"),
        predictions=boxes, event_type="custom", solution=use_case, custom_metadata={"run": "event-store"},
        fire_and_forget=False, disable_sink=False, write_to_event_store=True,
        event_store_url=os.environ["EVENT_STORE_URL"], custom_value="ok")
    # The bundle block: one bundle naming its use case, one leaving it to ?useCaseId=.
    bundles = VisionEventBundleSinkBlockV1(background_tasks=None, thread_pool_executor=None,
                                           allow_access_to_file_system=True, allowed_write_directory=None)
    results["bundle"] = bundles.run(
        target_directory=os.environ["BUNDLE_DIR"], input_image=frame((5, 5, 150), "cam-4"),
        output_image=frame((5, 5, 250), "cam-4-annotated"), predictions=boxes, event_type="quality_check",
        custom_metadata={"run": "bundle", "temperature": 99}, fire_and_forget=False, disable_sink=False,
        solution=use_case, cooldown_seconds=0, qc_result="pass")
    results["bundle_no_use_case"] = bundles.run(
        target_directory=os.environ["BUNDLE_DIR"], input_image=None, output_image=frame((150, 5, 5), "cam-5"),
        predictions=classification, event_type="custom", custom_metadata={"run": "bundle-query-use-case"},
        fire_and_forget=False, disable_sink=False, cooldown_seconds=0, custom_value="later")
    pool.shutdown(wait=True)  # the background send has finished once this returns
    print(json.dumps(results))


if __name__ == "__main__":
    main()
