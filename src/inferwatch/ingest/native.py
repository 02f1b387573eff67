"""The native batch ingest format: `{"inferences": [ITEM, ...]}` or NDJSON, one ITEM a line.

An ITEM wraps what `InferenceHTTPClient.infer` returns (`result`) with the facts only the
caller knows: model, device, tags, time and metadata. A batch is all or nothing: one bad item
rejects it, with every bad item's index and reason.
"""

from __future__ import annotations

import functools
import operator
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Union, cast, get_args, get_origin, get_type_hints

import msgspec

from inferwatch.errors import InvalidRequest, PayloadTooLarge
from inferwatch.ingest import limits
from inferwatch.ingest.fields import (
    ClassId,
    ClassName,
    Confidence,
    Coordinate,
    FieldName,
    FieldValue,
    ImageIndex,
    ModelId,
    Name,
    Pixels,
    Seconds,
)
from inferwatch.ingest.rows import InferenceRows, MetadataRows


class Point(msgspec.Struct):
    x: Coordinate
    y: Coordinate


class Keypoint(msgspec.Struct, omit_defaults=True):
    x: Coordinate
    y: Coordinate
    confidence: Confidence | None = None
    class_id: ClassId | None = None
    class_: ClassName | None = msgspec.field(default=None, name="class")


class Prediction(msgspec.Struct):
    class_: ClassName = msgspec.field(name="class")
    confidence: Confidence = 0.0
    class_id: ClassId | None = None
    x: Coordinate | None = None
    y: Coordinate | None = None
    width: Coordinate | None = None
    height: Coordinate | None = None
    detection_id: Name | None = None
    points: list[Point] | None = None
    keypoints: list[Keypoint] | None = None


class LabelScore(msgspec.Struct):
    confidence: Confidence
    class_id: ClassId | None = None


class ImageSize(msgspec.Struct):
    width: Pixels | None = None
    height: Pixels | None = None


class Result(msgspec.Struct):
    inference_id: Name | None = None
    time: Seconds | None = None
    image: ImageSize | None = None
    predictions: list[Prediction] | dict[ClassName, LabelScore] | None = None
    top: ClassName | None = None
    confidence: Confidence | None = None
    predicted_classes: list[ClassName] | None = None


MetaValue = FieldValue | int | float | bool


class Item(msgspec.Struct):
    model_id: ModelId
    result: Result
    inference_id: Name | None = None
    timestamp: float | datetime | None = None
    device_id: Name | None = None
    tags: list[Name] | None = None
    metadata: dict[FieldName, MetaValue] | None = None
    image_index: ImageIndex = 0
    task: Name | None = None
    # What made the request (an app, a workflow), as the inference server's reports say it.
    source: Name | None = None


class Batch(msgspec.Struct):
    inferences: list[Item]


class _RawBatch(msgspec.Struct):
    inferences: list[msgspec.Raw]


def _without_patterns(tp: Any) -> Any:
    """`tp` with every regex constraint dropped (lengths and bounds kept), Structs included."""
    origin = get_origin(tp)
    if origin is Annotated:
        base, *metas = get_args(tp)
        kept = [_meta_without_pattern(m) if isinstance(m, msgspec.Meta) else m for m in metas]
        return Annotated[(_without_patterns(base), *kept)]
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return _unchecked_struct(tp)
    if origin is None:
        return tp
    args = tuple(_without_patterns(a) for a in get_args(tp))
    if origin is Union or origin is type(int | None):
        return functools.reduce(operator.or_, args)
    return origin[args if len(args) > 1 else args[0]]


def _meta_without_pattern(meta: msgspec.Meta) -> msgspec.Meta:
    names = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "tz")
    return msgspec.Meta(**{n: getattr(meta, n) for n in names if getattr(meta, n) is not None})


@functools.cache
def _unchecked_struct(cls: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A subclass of `cls` decoding the same JSON into the same fields, without regex checks,
    and untracked by the garbage collector (decoded items hold no reference cycles)."""
    hints = get_type_hints(cls, include_extras=True)
    fields = []
    for f in msgspec.structs.fields(cls):
        if f.default_factory is not msgspec.NODEFAULT:
            default = msgspec.field(default_factory=f.default_factory, name=f.encode_name)
        elif f.default is not msgspec.NODEFAULT:
            default = msgspec.field(default=f.default, name=f.encode_name)
        else:
            default = msgspec.field(name=f.encode_name)
        fields.append((f.name, _without_patterns(hints[f.name]), default))
    return msgspec.defstruct(f"_Unchecked{cls.__name__}", fields, bases=(cls,), gc=False)


# Regex checks of names can only fail on a control character (or NUL), and JSON can only carry
# one escaped (or as a raw DEL). A body without any is decoded without them, which is several
# times faster; any other body, or any error, takes the checked decoder, so every answer,
# accepted or refused, is exactly what the checked decoder gives.
_CONTROL_ESCAPE = re.compile(rb"\\(?:[bfnrt]|u00[01]|u007[fF])")
_unchecked_batch = msgspec.json.Decoder(_unchecked_struct(Batch))
_batch = msgspec.json.Decoder(Batch)
_raw_batch = msgspec.json.Decoder(_RawBatch)
_item = msgspec.json.Decoder(Item)
_encode = msgspec.json.Encoder().encode
_MAX_REPORTED_ERRORS = 100


def _decode_batch(body: bytes) -> list[Item]:
    """`_batch.decode(body).inferences`, skipping the regex checks when they cannot fail."""
    if b"\x7f" not in body and _CONTROL_ESCAPE.search(body) is None:
        try:
            return cast(list[Item], _unchecked_batch.decode(body).inferences)  # type: ignore[attr-defined]
        except msgspec.DecodeError:
            pass
    return _batch.decode(body).inferences


def decode_json(body: bytes) -> list[Item]:
    try:
        items = _decode_batch(body)
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"body is not valid JSON: {exc}") from None
    else:
        _check_count(len(items))
        return items
    try:
        raws = _raw_batch.decode(body).inferences
    except msgspec.DecodeError as exc:
        raise InvalidRequest(f"expected {{\"inferences\": [...]}}: {exc}") from None
    _check_count(len(raws))
    return _decode_each(raws)


def decode_ndjson(body: bytes) -> list[Item]:
    lines = [line for line in body.split(b"\n") if line.strip()]
    _check_count(len(lines))
    try:
        return _decode_batch(b'{"inferences":[' + b",".join(lines) + b"]}")
    except msgspec.DecodeError:
        return _decode_each(lines)


def _check_count(n: int) -> None:
    if n > limits.MAX_ITEMS_PER_BATCH:
        raise PayloadTooLarge(f"{n} items in one batch; at most {limits.MAX_ITEMS_PER_BATCH}")


def _decode_each(raws: list[msgspec.Raw] | list[bytes]) -> list[Item]:
    """Slow path, taken only for a bad batch: find every item that is wrong and say why."""
    items: list[Item] = []
    errors: list[dict[str, Any]] = []
    for index, raw in enumerate(raws):
        try:
            items.append(_item.decode(raw))
        except msgspec.DecodeError as exc:
            errors.append({"index": index, "error": str(exc)})
            if len(errors) >= _MAX_REPORTED_ERRORS:
                break
    if errors:
        raise InvalidRequest(errors)
    return items


def _timestamp_us(value: float | datetime | None, default_us: int) -> int:
    if value is None:
        return default_us
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        seconds = value.timestamp()
    else:
        seconds = value
    if not limits.MIN_TIMESTAMP_S <= seconds < limits.MAX_TIMESTAMP_S:
        raise ValueError("timestamp must lie between 2000-01-01 and 2100-01-01")
    return round(seconds * 1_000_000)


def to_rows(
    items: list[Item], ws: int, now_us: int, source: str = "native"
) -> tuple[InferenceRows, MetadataRows, list[str]]:
    """Normalises decoded items; raises InvalidRequest naming every item that cannot be stored."""
    rows = InferenceRows()
    meta = MetadataRows()
    ids: list[str] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        try:
            inference_id = _add_item(rows, item, ws, now_us, source)
        except ValueError as exc:
            errors.append({"index": index, "error": str(exc)})
            if len(errors) >= _MAX_REPORTED_ERRORS:
                break
            continue
        ids.append(inference_id)
        if item.metadata:
            if len(item.metadata) > limits.MAX_METADATA_PER_ITEM:
                errors.append({"index": index, "error": "too many metadata fields"})
                continue
            for name, value in item.metadata.items():
                meta.add(ws, inference_id, name, value, now_us)
    if errors:
        raise InvalidRequest(errors)
    return rows, meta, ids


def _add_item(rows: InferenceRows, item: Item, ws: int, now_us: int, source: str) -> str:
    result = item.result
    inference_id = item.inference_id or result.inference_id or str(uuid.uuid4())
    ts_us = _timestamp_us(item.timestamp, now_us)
    tags = item.tags or []
    if len(tags) > limits.MAX_TAGS_PER_ITEM:
        raise ValueError(f"at most {limits.MAX_TAGS_PER_ITEM} tags")
    task, extra_values = add_result(rows, result, item.task)
    if item.source is not None:
        extra_values = {**(extra_values or {}), "request_source": item.source}
    extra = None if extra_values is None else _encode(extra_values).decode()
    if extra is not None and len(extra) > limits.MAX_EXTRA_JSON_BYTES:
        raise ValueError("result too large")
    image = result.image
    rows.add(ws, inference_id, item.image_index, ts_us, now_us, item.model_id, task, item.device_id, tags, source,
             result.time, image.width if image else None, image.height if image else None, extra)
    return inference_id


def add_result(rows: InferenceRows, result: Result, task: str | None) -> tuple[str, dict[str, Any] | None]:
    """Appends the model's verdict as predictions and returns (task, extra values).

    Detections are all verdicts; a classifier's verdict is its top class (single-label) or its
    chosen classes (multi-label), and the scores of the other classes go to `extra`, so class
    counts and average confidence mean the same thing for every task.
    """
    preds = result.predictions
    if isinstance(preds, dict):
        chosen = result.predicted_classes
        if chosen is None:
            chosen = [name for name, score in preds.items() if score.confidence >= 0.5]
        verdict = []
        for name in chosen:
            score = preds.get(name)
            verdict.append((name, score.class_id if score else None, score.confidence if score else 0.0))
        scores = {name: score.confidence for name, score in preds.items()}
        _add_labels(rows, verdict)
        return task or "multi-label-classification", {"class_scores": scores}
    preds = preds or []
    if len(preds) > limits.MAX_PREDICTIONS_PER_ITEM:
        raise ValueError(f"at most {limits.MAX_PREDICTIONS_PER_ITEM} predictions per result")
    if result.top is not None or (preds and preds[0].x is None):
        if result.top is not None:
            top = result.top
            by_name = {p.class_: p for p in preds}
            best = by_name.get(top)
            confidence = result.confidence if result.confidence is not None else (
                best.confidence if best else 0.0)
            verdict = [(top, best.class_id if best else None, confidence)]
        else:
            best = max(preds, key=lambda p: p.confidence)
            verdict = [(best.class_, best.class_id, best.confidence)]
        _add_labels(rows, verdict)
        return task or "classification", {"class_scores": {p.class_: p.confidence for p in preds}}
    return add_detections(rows, preds, task), None


def add_detections(rows: InferenceRows, preds: list[Prediction], task: str | None) -> str:
    """Appends every prediction as it came (geometry where present) and returns the task."""
    if len(preds) > limits.MAX_PREDICTIONS_PER_ITEM:
        raise ValueError(f"at most {limits.MAX_PREDICTIONS_PER_ITEM} predictions per result")
    rows.n_predictions.append(len(preds))
    if not preds:
        return task or "object-detection"
    kind = "object-detection"
    for p in preds:  # appended here rather than through `rows.add_prediction`: the hot path
        rows.p_class.append(p.class_)
        rows.p_class_id.append(p.class_id)
        rows.p_confidence.append(p.confidence)
        rows.p_x.append(p.x)
        rows.p_y.append(p.y)
        rows.p_width.append(p.width)
        rows.p_height.append(p.height)
        rows.p_detection_id.append(p.detection_id)
        if p.points is None and p.keypoints is None:
            rows.p_points.append(None)
            rows.p_keypoints.append(None)
            continue
        rows.p_points.append(None if p.points is None else _encode(p.points).decode())
        rows.p_keypoints.append(None if p.keypoints is None else _encode(p.keypoints).decode())
        kind = "keypoint-detection" if p.keypoints is not None else "instance-segmentation"
    return task or kind


def _add_labels(rows: InferenceRows, verdict: list[tuple[str, int | None, float]]) -> None:
    rows.n_predictions.append(len(verdict))
    for name, class_id, confidence in verdict:
        rows.add_prediction(name, class_id, confidence)
