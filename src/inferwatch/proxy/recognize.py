"""Which requests to an inference server are inferences, and what to record of them.

Pure functions, no I/O: the proxy forwards every request whatever these say; they only decide
what is recorded. The routes are those of Roboflow's `inference` server (1.8.x):

- `POST /infer/{task}` (v1, what `InferenceHTTPClient` uses by default): the model id is the
  JSON body's `model_id`; a body whose `image` is a list answers a list, one result per image,
  sharing one `inference_id`.
- `POST /{project}/{version}` (v0, the legacy route, `client.select_api_v0()`): the model id is
  the path; the body is the image itself.
- `POST /workflows/run`, `/infer/workflows`, `/{workspace}/workflows/{id}`,
  `/infer/workflows/{workspace}/{id}`: `{"outputs": [...]}`, one entry per input image; what a
  model block put out is recorded when it carries its `inference_id` (a model block's `*`
  output: `inference_id`, `predictions`, `model_id`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

import msgspec

# The tasks inferwatch stores (ingest/native.py); other `/infer/...` answers (embeddings, OCR,
# LMM, depth) are not model-monitoring results and pass through unrecorded.
INFER_TASKS = frozenset({"object_detection", "instance_segmentation", "keypoints_detection", "classification"})

# First path segments of the inference server's own two-segment routes, so `/model/add` or
# `/clip/embed_image` is never taken for the legacy `/{project}/{version}` route.
SERVER_NAMESPACES = frozenset({
    "clear_cache", "clip", "device", "doctr", "easy_ocr", "gaze", "grounding_dino", "infer",
    "inference_pipelines", "initialise_webrtc_worker", "model", "notebook", "ocr", "owlv2",
    "perception_encoder", "sam", "sam2", "sam3", "sam3_3d", "secure-gateway", "start", "webrtc",
    "workflows", "yolo_world", "api", "docs", "openapi.json", "metrics", "info", "healthz", "readiness",
    "logs", "dashboard.html", "static",
})

# What the result of one image keeps on its way to inferwatch: what ingest reads. A
# visualization (a base64 image) or a model's extra outputs would only make the batch bigger.
RESULT_KEYS = ("inference_id", "time", "image", "predictions", "top", "confidence", "predicted_classes")

Kind = Literal["infer", "legacy", "workflow"]


@dataclass(frozen=True, slots=True)
class Route:
    """A request whose answer may be an inference. `model_id` is known from the path for the
    legacy route; for a workflow it is the fallback when an output does not name its model."""

    kind: Kind
    model_id: str | None = None


@dataclass(frozen=True, slots=True)
class RequestFacts:
    """What the request says that the answer does not: the model, the key, the caller's source."""

    model_id: str | None = None
    api_key: str | None = None
    source: str | None = None


@dataclass(slots=True)
class Found:
    """Results of one model that share one inference id (the images of one batched request, in
    order; usually just one)."""

    model_id: str | None
    results: list[dict[str, Any]] = field(default_factory=list)


def route_of(method: str, path: str) -> Route | None:
    """The kind of inference a request is, from its method and path (relative to the upstream)."""
    if method != "POST":
        return None
    parts = [p for p in path.split("/") if p]
    if len(parts) == 2 and parts[0] == "infer" and parts[1] in INFER_TASKS:
        return Route("infer")
    if parts == ["workflows", "run"] or parts == ["infer", "workflows"]:
        return Route("workflow", "workflow")
    if len(parts) == 4 and parts[:2] == ["infer", "workflows"]:
        return Route("workflow", f"workflow:{parts[2]}/{parts[3]}")
    if len(parts) == 3 and parts[1] == "workflows" and parts[0] not in SERVER_NAMESPACES:
        return Route("workflow", f"workflow:{parts[0]}/{parts[2]}")
    if len(parts) == 2 and parts[0] not in SERVER_NAMESPACES:
        return Route("legacy", f"{parts[0]}/{parts[1]}")
    return None


class _Body(msgspec.Struct):
    """The few fields of an inference request's JSON body the proxy reads; msgspec skips the
    rest (the base64 image) without building it."""

    model_id: str | None = None
    api_key: str | None = None
    source: str | None = None


_body = msgspec.json.Decoder(_Body)


def request_facts(route: Route, query_string: bytes, body: bytes | None, authorization: str | None) -> RequestFacts:
    """Model id, API key and source of a request, from its path, query, JSON body and
    `Authorization: Bearer` (where `InferenceHTTPClient` may put the key), in that order of trust:
    the path names the legacy route's model; the body, else the query, the rest."""
    query = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=False))
    parsed = _Body()
    if body and route.kind != "legacy":  # the legacy route's body is the image, not JSON
        with contextlib.suppress(msgspec.DecodeError):
            parsed = _body.decode(body)
    key = parsed.api_key or query.get("api_key")
    if not key and authorization:
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            key = token.strip()
    model_id = route.model_id if route.kind == "legacy" else (parsed.model_id or query.get("model_id"))
    return RequestFacts(model_id=model_id or route.model_id, api_key=key or None,
                        source=parsed.source or query.get("source") or None)


def _is_result(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("predictions"), list | dict)


def answer_results(route: Route, answer: Any) -> tuple[list[Found], bool]:
    """The results in an answer, grouped by (model, inference id), and whether inference ids had
    to be added to the answer (then it must be re-encoded before it is returned).

    A model's answer without `inference_id` gets a fresh one, set in the answer's own dicts; the
    images of a batched request share one, as the inference server does it. Workflow outputs are
    recorded only when they carry their id (they are never changed).
    """
    if route.kind == "workflow":
        return _workflow_results(route, answer), False
    results = answer if isinstance(answer, list) else [answer]
    if not results or not all(_is_result(r) for r in results):
        return [], False
    changed = False
    missing = [r for r in results if not isinstance(r.get("inference_id"), str) or not r["inference_id"]]
    if missing:
        fresh = str(uuid.uuid4())
        for r in missing:
            r["inference_id"] = fresh
        changed = True
    return _group(route.model_id, results), changed


def _group(model_id: str | None, results: list[dict[str, Any]]) -> list[Found]:
    """Consecutive results sharing an id stay together (their order is their image index)."""
    groups: dict[tuple[str | None, str], Found] = {}
    for r in results:
        model = r.get("model_id") if isinstance(r.get("model_id"), str) else model_id
        key = (model, r["inference_id"])
        groups.setdefault(key, Found(model)).results.append(r)
    return list(groups.values())


def _workflow_results(route: Route, answer: Any) -> list[Found]:
    outputs = answer.get("outputs") if isinstance(answer, dict) else None
    if not isinstance(outputs, list):
        return []
    found: list[dict[str, Any]] = []
    for row in outputs:
        found.extend(_model_outputs(row, depth=0))
    return _group(route.model_id, found)


def _model_outputs(value: Any, depth: int) -> Iterator[dict[str, Any]]:
    """Every model block output within one workflow output row, as a flat result dict: the
    block's `predictions` (itself `{"image", "predictions"}`) with its `inference_id` and
    `model_id` beside."""
    if depth > 4:
        return
    if isinstance(value, list):
        for v in value:
            yield from _model_outputs(v, depth + 1)
        return
    if not isinstance(value, dict):
        return
    inference_id = value.get("inference_id")
    predictions = value.get("predictions")
    if isinstance(inference_id, str) and inference_id and predictions is not None:
        result = dict(predictions) if isinstance(predictions, dict) and "predictions" in predictions \
            else {"predictions": predictions}
        result["inference_id"] = inference_id
        if isinstance(value.get("model_id"), str):
            result["model_id"] = value["model_id"]
        if _is_result(result):
            yield result
        return
    for v in value.values():
        if isinstance(v, dict | list):
            yield from _model_outputs(v, depth + 1)


def lean(result: dict[str, Any]) -> dict[str, Any]:
    """The part of one result inferwatch stores (see RESULT_KEYS)."""
    return {k: result[k] for k in RESULT_KEYS if k in result}
