"""The `inference` server's model-monitoring report (`POST /inference-stats`) → rows.

One report holds the results cached since the last one; each result is one request, whose
`response` holds one element per image of the request (none when nothing was predicted and
the server runs with the default `TINY_CACHE=true`). Every element becomes one inference keyed
by (inference_id, image index), so a report the server sends again is stored once.
The machine facts at the top of the report describe the device and are upserted beside the rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any, Protocol, TypeVar

import msgspec

from inferwatch.errors import InvalidRequest, PayloadTooLarge
from inferwatch.ingest import fields, limits
from inferwatch.ingest.fields import ModelId, Name, SmallCount
from inferwatch.ingest.native import Result, add_detections, add_result
from inferwatch.ingest.rows import DeviceRows, InferenceRows

# Free text the server reports (versions, host names, sources); bounded, any characters but NUL.
Text = Annotated[str, msgspec.Meta(max_length=limits.MAX_FIELD_VALUE_LEN, pattern=r"^[^\x00]*$")]
Threshold = Annotated[float, msgspec.Meta(ge=0.0, le=1.0)] | Text  # a float, "best" or "default"

_CLASSIFICATION = ("classification", "multi-label-classification", "multilabel-classification")


class Request(msgspec.Struct):
    model_id: ModelId | None = None
    api_key: str | None = None
    model_type: Name | None = None
    confidence: Threshold | None = None
    source: Text | None = None
    source_info: Text | None = None
    iou_threshold: Threshold | None = None
    max_detections: SmallCount | None = None


class Inference(msgspec.Struct):
    request: Request
    response: list[Result] | Result | None = None
    inference_id: Name | None = None
    inference_server_version: Text | None = None
    inference_server_id: Text | None = None


class CachedResult(msgspec.Struct):
    inference: Inference
    request_time: Annotated[float, msgspec.Meta(ge=0, le=1e11)] | None = None


class ServerFacts(msgspec.Struct):
    """What every report of an inference server says about itself (and the key it reports with)."""

    api_key: str | None = None
    device_id: Name | None = None
    inference_server_id: Text | None = None
    inference_server_version: Text | None = None
    platform: Text | None = None
    hostname: Text | None = None


class Report(ServerFacts):
    tags: list[Name] | None = None
    inference_results: list[CachedResult] = msgspec.field(default_factory=list)


_decode = msgspec.json.Decoder(Report)
_encode = msgspec.json.Encoder().encode


class _Results(Protocol):
    @property
    def inference_results(self) -> Sequence[object]: ...


R = TypeVar("R", bound=_Results)


def decode_report(decoder: msgspec.json.Decoder[R], body: bytes) -> R:
    """A report of either format, validated, with its results counted against the batch limit."""
    report = fields.decode(decoder, body)
    if len(report.inference_results) > limits.MAX_ITEMS_PER_BATCH:
        raise PayloadTooLarge(f"at most {limits.MAX_ITEMS_PER_BATCH} results per report")
    return report


class _Presence(msgspec.Struct):
    inference_results: msgspec.Raw = msgspec.Raw(b"")  # empty when the field is missing


_presence = msgspec.json.Decoder(_Presence)


def decode(body: bytes) -> Report:
    """A report; a body without `inference_results` is none (a client sent to the wrong URL
    must hear so, not get a 200 that stored nothing)."""
    report = decode_report(_decode, body)
    if bytes(_presence.decode(body).inference_results) in (b"", b"null"):
        raise InvalidRequest("not an inference server report: `inference_results` is missing")
    if report.tags and len(report.tags) > limits.MAX_TAGS_PER_ITEM:
        raise InvalidRequest(f"at most {limits.MAX_TAGS_PER_ITEM} tags")
    return report


def result_keys(report: Report) -> list[str | None]:
    """The API key each result is reported under: the report's, else the result's own."""
    return [report.api_key or r.inference.request.api_key for r in report.inference_results]


def to_rows(report: Report, workspaces: list[int], now_us: int, report_ws: int | None = None
            ) -> tuple[InferenceRows, DeviceRows]:
    """`workspaces[i]` is the workspace of result i; `report_ws` the report's own (its top-level
    key's), which learns of the device even from a report without results. Raises InvalidRequest
    naming every bad result."""
    rows = InferenceRows()
    devices = DeviceRows()
    errors: list[dict[str, Any]] = []
    tags = report.tags or []
    for index, (ws, cached) in enumerate(zip(workspaces, report.inference_results, strict=True)):
        try:
            _add_result(rows, cached, report, ws, tags, now_us)
        except ValueError as exc:
            errors.append({"index": index, "error": str(exc)})
    if errors:
        raise InvalidRequest(errors[:100])
    if report.device_id is not None:
        for ws in dict.fromkeys([*workspaces, report_ws] if report_ws is not None else workspaces):
            devices.add(ws, report.device_id, now_us, report.inference_server_id, report.inference_server_version,
                        report.hostname, report.platform, tags)
    return rows, devices


def _add_result(rows: InferenceRows, cached: CachedResult, report: Report, ws: int, tags: list[str],
                now_us: int) -> None:
    inference = cached.inference
    request = inference.request
    if request.model_id is None:
        raise ValueError("request.model_id is missing")
    ts_us = now_us
    if cached.request_time is not None:
        if not limits.MIN_TIMESTAMP_S <= cached.request_time < limits.MAX_TIMESTAMP_S:
            raise ValueError("request_time must lie between 2000-01-01 and 2100-01-01")
        ts_us = round(cached.request_time * 1_000_000)
    responses = inference.response
    if responses is None:
        responses = []
    elif isinstance(responses, Result):
        responses = [responses]
    inference_id = inference.inference_id or next(
        (r.inference_id for r in responses if r.inference_id), None) or str(uuid.uuid4())
    facts: dict[str, Any] = {
        "model_type": request.model_type,
        "confidence_threshold": request.confidence,
        "request_source": request.source,
        "request_source_info": request.source_info,
        "iou_threshold": request.iou_threshold,
        "max_detections": request.max_detections,
        "inference_server_id": inference.inference_server_id or report.inference_server_id,
        "inference_server_version": inference.inference_server_version or report.inference_server_version,
    }
    facts = {k: v for k, v in facts.items() if v is not None}
    task_hint = task_of(request.model_type)
    # An empty list is a request that predicted nothing: one inference without predictions.
    for image_index, response in enumerate(responses or [Result(predictions=[])]):
        extra = dict(facts)
        if task_hint in _CLASSIFICATION or response.top is not None or isinstance(response.predictions, dict):
            # "classification" also names multi-label models: let the response's shape tell.
            task, values = add_result(rows, response, None if task_hint == "classification" else task_hint)
            extra.update(values or {})
        else:
            # Detections, segments and keypoints; the condensed form has no geometry, so every
            # entry is a prediction (one per keypoint for keypoint models).
            task = add_detections(rows, response.predictions or [], task_hint)
        encoded = _encode(extra).decode() if extra else None
        if encoded is not None and len(encoded) > limits.MAX_EXTRA_JSON_BYTES:
            raise ValueError("result too large")
        image = response.image
        rows.add(ws, inference_id, image_index, ts_us, now_us, request.model_id, task, report.device_id, tags,
                 "pingback", response.time, image.width if image else None, image.height if image else None, encoded)


def task_of(model_type: str | None) -> str | None:
    """The task a request's model_type names, in inferwatch's words (None: infer it from the shape)."""
    if model_type is None:
        return None
    name = model_type.strip().lower().replace("_", "-")
    known = {
        "object-detection": "object-detection",
        "classification": "classification",
        "multi-label-classification": "multi-label-classification",
        "multilabel-classification": "multi-label-classification",
        "instance-segmentation": "instance-segmentation",
        "keypoint-detection": "keypoint-detection",
        "keypoints-detection": "keypoint-detection",
    }
    return known.get(name)
