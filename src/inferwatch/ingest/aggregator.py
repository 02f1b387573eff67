"""The workflow block `model_monitoring_inference_aggregator` (`POST /{workspace}/inference-stats`) → rows.

Each window the block reports the most confident prediction per class, one entry each, naming
the inference it came from. Entries of one (inference_id, model) become one inference with
those predictions, timed by the report's `timestamp`; a report sent again is stored once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import msgspec

from inferwatch.errors import InvalidRequest
from inferwatch.ingest import limits
from inferwatch.ingest.fields import ClassName, Confidence, ModelId, Name
from inferwatch.ingest.native import Prediction, add_detections
from inferwatch.ingest.pingback import ServerFacts, Text, decode_report, task_of
from inferwatch.ingest.rows import DeviceRows, InferenceRows


class Entry(msgspec.Struct):
    model_id: ModelId
    class_name: ClassName
    confidence: Confidence = 0.0
    inference_id: Name | None = None
    model_type: Name | None = None


class Report(ServerFacts):
    timestamp: datetime | float | None = None
    source: Text | None = None
    source_info: Text | None = None
    inference_results: list[Entry] = msgspec.field(default_factory=list)


_decode = msgspec.json.Decoder(Report)
_encode = msgspec.json.Encoder().encode


def decode(body: bytes) -> Report:
    return decode_report(_decode, body)


def _timestamp_us(value: datetime | float | None, now_us: int) -> int:
    if value is None:
        return now_us
    if isinstance(value, datetime):
        seconds = (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    else:
        seconds = value
    if not limits.MIN_TIMESTAMP_S <= seconds < limits.MAX_TIMESTAMP_S:
        raise InvalidRequest("timestamp must lie between 2000-01-01 and 2100-01-01")
    return round(seconds * 1_000_000)


def to_rows(report: Report, ws: int, now_us: int) -> tuple[InferenceRows, DeviceRows]:
    ts_us = _timestamp_us(report.timestamp, now_us)
    groups: dict[tuple[str, str], list[Entry]] = {}
    for entry in report.inference_results:
        # An entry without an id stands alone (its own inference).
        key = (entry.inference_id or str(uuid.uuid4()), entry.model_id)
        groups.setdefault(key, []).append(entry)
    rows = InferenceRows()
    facts: dict[str, Any] = {
        "request_source": report.source,
        "request_source_info": report.source_info,
        "inference_server_id": report.inference_server_id,
        "inference_server_version": report.inference_server_version,
    }
    for (inference_id, model_id), entries in groups.items():
        if len(entries) > limits.MAX_PREDICTIONS_PER_ITEM:
            raise InvalidRequest(f"at most {limits.MAX_PREDICTIONS_PER_ITEM} predictions per inference")
        model_type = next((e.model_type for e in entries if e.model_type), None)
        preds = [Prediction(class_=e.class_name, confidence=e.confidence) for e in entries]
        task = add_detections(rows, preds, task_of(model_type) or "object-detection")
        extra = {k: v for k, v in {**facts, "model_type": model_type}.items() if v is not None}
        rows.add(ws, inference_id, 0, ts_us, now_us, model_id, task, report.device_id, [], "aggregator", None, None,
                 None, _encode(extra).decode() if extra else None)
    devices = DeviceRows()
    if report.device_id is not None:
        devices.add(ws, report.device_id, now_us, report.inference_server_id, report.inference_server_version,
                    report.hostname, report.platform, None)
    return rows, devices
