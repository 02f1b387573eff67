"""Drives Roboflow's own `inference` package against a running inferwatch (run as a subprocess).

Everything that builds and sends the data is the package's own code: its request and response
entities, `to_cachable_inference_item`, its model-monitoring cache, `PingbackInfo.post_data`,
and the custom-metadata workflow block's `add_custom_metadata_request` with the server's platform
client (`GET /?api_key=`, then `POST /{workspace}/inference-stats/metadata?api_key=`).
Stand-ins: `_Models` for the server's model manager (PingbackInfo only asks it which models are
loaded), and the package `__init__`s of `inference` and `inference_models`, skipped because they
import the model loaders (torch); tests/clients/stubs covers the rest of torch's import-time use.

Configured by the environment the test sets before the imports read it: METRICS_URL,
API_BASE_URL, TINY_CACHE, DEVICE_ID, TAGS, API_KEY (optional), and INFERWATCH_KEY, the key the
requests carry. argv[1] is the fixtures directory. Prints what it reported, as JSON.
"""

from __future__ import annotations

import importlib.machinery
import json
import os
import sys
import time
import types
from pathlib import Path
from typing import Any


def _skip_package_inits() -> None:
    for name in ("inference", "inference_models"):
        spec = importlib.machinery.PathFinder.find_spec(name)
        if spec is None or not spec.submodule_search_locations:
            raise SystemExit(f"{name} is not installed (make test installs tests/clients/requirements-inference.txt)")
        module = types.ModuleType(name)
        module.__path__ = list(spec.submodule_search_locations)
        sys.modules[name] = module


class _Models:
    """What PingbackInfo asks of the server's ModelManager."""

    uuid = "inferwatch-test"

    def __init__(self, model_ids: list[str]) -> None:
        self._ids = model_ids

    def models(self) -> list[str]:
        return list(self._ids)


def main() -> None:
    _skip_package_inits()
    fixtures = Path(sys.argv[1])
    key = os.environ["INFERWATCH_KEY"]

    from inference.core.cache import cache as server_cache
    from inference.core.cache import model_monitoring
    from inference.core.cache.serializers import to_cachable_inference_item
    from inference.core.devices.utils import GLOBAL_INFERENCE_SERVER_ID
    from inference.core.entities.requests.inference import (
        ClassificationInferenceRequest,
        KeypointsDetectionInferenceRequest,
        ObjectDetectionInferenceRequest,
    )
    from inference.core.entities.responses.inference import (
        ClassificationInferenceResponse,
        KeypointsDetectionInferenceResponse,
        ObjectDetectionInferenceResponse,
    )
    from inference.core.interfaces.roboflow_platform_client import SERVER_PLATFORM_CLIENT
    from inference.core.managers.pingback import PingbackInfo
    from roboflow_workflows.core_steps.sinks.roboflow.custom_metadata.v1 import add_custom_metadata_request

    def fixture(name: str) -> dict[str, Any]:
        body: dict[str, Any] = json.loads((fixtures / f"{name}.json").read_text())
        return body

    image = {"type": "url", "value": "http://camera.invalid/frame.jpg"}
    cases: list[tuple[str, Any, Any, list[str]]] = [
        ("pcb-defects/7", ObjectDetectionInferenceRequest, ObjectDetectionInferenceResponse,
         ["response-object-detection"]),
        ("pcb-defects/7", ObjectDetectionInferenceRequest, ObjectDetectionInferenceResponse,
         ["response-object-detection-empty"]),
        ("pcb-defects/7", ObjectDetectionInferenceRequest, ObjectDetectionInferenceResponse,
         ["response-object-detection", "response-object-detection"]),  # a batch of two images
        ("paint-color/3", ClassificationInferenceRequest, ClassificationInferenceResponse,
         ["response-classification"]),
        ("worker-pose/4", KeypointsDetectionInferenceRequest, KeypointsDetectionInferenceResponse,
         ["response-keypoint-detection"]),
    ]
    reported = []
    for model_id, request_type, response_type, names in cases:
        request = request_type(api_key=key, model_id=model_id, image=image, confidence=0.4)
        responses = [response_type.model_validate({**fixture(n), "inference_id": request.id}) for n in names]
        item = to_cachable_inference_item(request, responses if len(responses) > 1 else responses[0],
                                          model_id=model_id)
        model_monitoring.model_monitoring_cache.zadd(
            f"inference:{GLOBAL_INFERENCE_SERVER_ID}:{model_id}", value=item, score=time.time(), expire=120)
        reported.append({"inference_id": request.id, "model_id": model_id,
                         "responses": [r.model_dump(by_alias=True, mode="json") for r in responses]})

    manager = _Models(sorted({model_id for model_id, *_ in cases}))
    pingback = PingbackInfo(manager)
    pingback.post_data(manager)

    failed, message = add_custom_metadata_request(
        cache=server_cache, api_key=key, inference_ids=[r["inference_id"] for r in reported],
        field_name="camera_location", field_value="canada", platform_client=SERVER_PLATFORM_CLIENT)
    print(json.dumps({"reported": reported, "server_id": GLOBAL_INFERENCE_SERVER_ID,
                      "metadata_failed": failed, "metadata_message": message}))


if __name__ == "__main__":
    main()
