"""What the SDK does with `supervision` objects and numpy frames, split in two halves: the
caller's (`snapshot`: copy the few small arrays it may reuse, a microsecond or two) and the
background thread's (`to_result`, `quality`, `encode_jpeg`: everything that costs).

supervision is never imported here unless an object of it was passed: a `Detections` is
recognised by its type's module and name, and only the background thread turns masks into
polygons with supervision's own `mask_to_polygons` (then it is installed: the caller made one).
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

# The figures sent as metadata with every frame given as `image=`; their names are the fields.
QUALITY_FIELDS = ("image_brightness", "image_contrast", "image_sharpness", "image_color_cast", "image_saturated")


def kind_of(value: object) -> str | None:
    """`"detections"` or `"keypoints"` for supervision's objects, else None (without importing it)."""
    cls = type(value)
    if not cls.__module__.startswith("supervision"):
        return None
    return {"Detections": "detections", "KeyPoints": "keypoints"}.get(cls.__name__)


def _copy(array: Any) -> Any:
    return None if array is None else np.array(array, copy=True)


@dataclass(slots=True)
class Snapshot:
    """The parts of a `Detections` and/or `KeyPoints` the result is made of, taken in the caller's
    thread. Small arrays are copied (trackers and filters may reuse them); masks are not (each is
    a full-frame array, and supervision makes new ones per frame)."""

    xyxy: np.ndarray | None
    confidence: np.ndarray | None
    class_id: np.ndarray | None
    class_name: np.ndarray | None
    tracker_id: np.ndarray | None
    mask: np.ndarray | None
    keypoints_xy: np.ndarray | None
    keypoints_confidence: np.ndarray | None
    keypoints_visible: np.ndarray | None


def _keypoint_parts(keypoints: Any) -> tuple[Any, Any, Any]:
    """xy, per-keypoint confidence and visibility (supervision 0.29 renamed `confidence` to
    `keypoint_confidence` and added `visible`; older releases have neither)."""
    confidence = keypoints.keypoint_confidence if hasattr(keypoints, "keypoint_confidence") else keypoints.confidence
    return _copy(keypoints.xy), _copy(confidence), _copy(getattr(keypoints, "visible", None))


def snapshot(value: Any, kind: str, keypoints: Any | None = None) -> Snapshot:
    if kind == "keypoints":
        data = getattr(value, "data", None) or {}
        return Snapshot(None, _copy(getattr(value, "detection_confidence", None)), _copy(value.class_id),
                        _copy(data.get("class_name")), None, None, *_keypoint_parts(value))
    data = value.data or {}
    return Snapshot(
        _copy(value.xyxy), _copy(value.confidence), _copy(value.class_id), _copy(data.get("class_name")),
        _copy(value.tracker_id), value.mask,
        *(_keypoint_parts(keypoints) if keypoints is not None else (None, None, None)),
    )


def to_result(snap: Snapshot, inference_id: str, class_names: list[str] | None,
              image_size: tuple[int, int] | None, inference_time: float | None) -> dict[str, Any]:
    """The inference result dict inferwatch ingests (the shape `InferenceHTTPClient.infer` returns):
    centre-x/y boxes in pixels, a mask's largest polygon as `points`, keypoints as `keypoints`."""
    n = _count(snap)
    predictions = []
    for i in range(n):
        prediction: dict[str, Any] = {"class": _class_of(snap, i, class_names)}
        if snap.class_id is not None:
            prediction["class_id"] = int(snap.class_id[i])
        keypoints = _keypoints(snap, i)
        if snap.xyxy is not None:
            x1, y1, x2, y2 = (float(v) for v in snap.xyxy[i])
        elif keypoints:
            xs = [k["x"] for k in keypoints]
            ys = [k["y"] for k in keypoints]
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        else:
            continue  # keypoints of an object with none seen: no box to place it by
        prediction.update(x=(x1 + x2) / 2, y=(y1 + y2) / 2, width=x2 - x1, height=y2 - y1)
        if snap.confidence is not None:
            prediction["confidence"] = float(snap.confidence[i])
        elif keypoints and all("confidence" in k for k in keypoints):
            prediction["confidence"] = sum(k["confidence"] for k in keypoints) / len(keypoints)
        else:
            prediction["confidence"] = 1.0
        if snap.tracker_id is not None:
            prediction["tracker_id"] = int(snap.tracker_id[i])
        if snap.mask is not None:
            points = _polygon(snap.mask[i])
            if points:
                prediction["points"] = points
        if keypoints:
            prediction["keypoints"] = keypoints
        predictions.append(prediction)
    result: dict[str, Any] = {"inference_id": inference_id, "predictions": predictions}
    if image_size is not None:
        result["image"] = {"width": image_size[0], "height": image_size[1]}
    if inference_time is not None:
        result["time"] = inference_time
    return result


def _count(snap: Snapshot) -> int:
    for array in (snap.xyxy, snap.keypoints_xy, snap.class_id):
        if array is not None:
            return len(array)
    return 0


def _class_of(snap: Snapshot, i: int, class_names: list[str] | None) -> str:
    if snap.class_name is not None:
        return str(snap.class_name[i])
    if snap.class_id is not None:
        cid = int(snap.class_id[i])
        if class_names is not None and 0 <= cid < len(class_names):
            return class_names[cid]
        return str(cid)
    return "object"


def _keypoints(snap: Snapshot, i: int) -> list[dict[str, Any]]:
    if snap.keypoints_xy is None:
        return []
    out = []
    for k, (x, y) in enumerate(snap.keypoints_xy[i]):
        conf = None if snap.keypoints_confidence is None else float(snap.keypoints_confidence[i][k])
        hidden = snap.keypoints_visible is not None and not snap.keypoints_visible[i][k]
        if hidden or (x == 0 and y == 0) or (conf is not None and conf <= 0):
            continue  # supervision marks a keypoint not seen as (0, 0), or not visible
        point: dict[str, Any] = {"x": float(x), "y": float(y), "class_id": k}
        if conf is not None:
            point["confidence"] = conf
        out.append(point)
    return out


def _polygon(mask: np.ndarray) -> list[dict[str, float]]:
    import supervision as sv  # only reached for a Detections with masks: supervision is installed

    polygons = sv.mask_to_polygons(mask)
    if not polygons:
        return []
    largest = max(polygons, key=len)
    return [{"x": float(x), "y": float(y)} for x, y in largest]


def image_size(frame: Any) -> tuple[int, int] | None:
    shape = getattr(frame, "shape", None)
    if shape is None or len(shape) < 2:
        return None
    return int(shape[1]), int(shape[0])


# Frames are measured at about this many rows or fewer: a 1080p frame on every other pixel of every
# other row (960x540), a 4K frame on every fourth. Enough for means and blur, a quarter of the work.
MEASURE_ROWS = 540


def quality(frame: np.ndarray, bgr: bool = True) -> dict[str, float]:
    """Cheap figures of a frame, for drift without a model: mean brightness and contrast (mean and
    standard deviation of luma, 0-1), sharpness (variance of the 4-neighbour Laplacian of luma,
    in 8-bit units: a blurred or fogged lens falls), colour cast (largest minus smallest channel
    mean, 0-1: a white-balance or lighting change) and the share of clipped pixels (luma at or
    under 2 or at or over 253: glare, or lights out).

    Measured on a regular subsample of `MEASURE_ROWS` rows or so (`step` pixels apart), so a
    camera's figures compare with its own over time; sharpness depends on that scale, so compare
    it between frames of the same size."""
    step = max(1, min(frame.shape[0], frame.shape[1]) // MEASURE_ROWS)
    luma, means = _luma(frame[::step, ::step], bgr)
    lum = luma.astype(np.float32)
    brightness = float(lum.mean()) / 255.0
    contrast = float(lum.std()) / 255.0
    if lum.shape[0] >= 3 and lum.shape[1] >= 3:
        laplacian = (lum[1:-1, :-2] + lum[1:-1, 2:] + lum[:-2, 1:-1] + lum[2:, 1:-1]) - 4.0 * lum[1:-1, 1:-1]
        sharpness = float(laplacian.var())
    else:
        sharpness = 0.0
    cast = (max(means) - min(means)) / 255.0 if means else 0.0
    clipped = np.count_nonzero((luma <= 2) | (luma >= 253)) / max(1, luma.size)
    return {"image_brightness": brightness, "image_contrast": contrast, "image_sharpness": sharpness,
            "image_color_cast": cast, "image_saturated": float(clipped)}


def _luma(frame: np.ndarray, bgr: bool) -> tuple[np.ndarray, list[float]]:
    """Luma (BT.601, 8-bit) and the channels' means in R, G, B order."""
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        gray = frame.reshape(frame.shape[0], frame.shape[1])
        return gray, []
    # One contiguous 16-bit copy per channel (the subsample is strided): their sums give the
    # means, and luma is made from them in place.
    first, second, third = (frame[:, :, c].astype(np.uint16) for c in range(3))
    b, g, r = (first, second, third) if bgr else (third, second, first)
    count = max(1, b.size)
    means = [float(r.sum()) / count, float(g.sum()) / count, float(b.sum()) / count]
    luma = r * 77
    luma += g * 150
    luma += b * 29
    luma >>= 8
    return luma.astype(np.uint8), means


def encode_jpeg(frame: np.ndarray, bgr: bool = True, quality: int = 85) -> bytes:
    """The frame as JPEG, with Pillow (an inferwatch dependency already)."""
    from PIL import Image

    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 3:
        frame = frame[:, :, 2::-1] if bgr else frame[:, :, :3]
    out = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(out, format="JPEG", quality=quality)
    return out.getvalue()
