"""The normal form every ingest format is turned into: column lists, one entry per inference.

Formats append to plain Python lists (the cheapest thing to build per item); the writer extends
the lists of every request waiting for a commit and turns them into one Arrow table, so the
fixed cost of building Arrow arrays is paid once per commit, not once per request.
Predictions are flattened: `n_predictions[i]` says how many of the `p_*` entries belong to row i.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from itertools import accumulate
from typing import Any, Self

import pyarrow as pa

from inferwatch.ingest.metavalues import MetaScalar, typed

PREDICTION_TYPE = pa.struct(
    [
        ("class", pa.string()),
        ("class_id", pa.int32()),
        ("confidence", pa.float64()),
        ("x", pa.float64()),
        ("y", pa.float64()),
        ("width", pa.float64()),
        ("height", pa.float64()),
        ("detection_id", pa.string()),
        ("points", pa.string()),
        ("keypoints", pa.string()),
    ]
)


class Columns:
    """What the column dataclasses share: every column list is as long as `ws`, and a commit's
    rows extend one instance with each request's."""

    __slots__ = ()

    def __len__(self) -> int:
        return len(self.ws)  # type: ignore[attr-defined]

    def extend(self, other: Self) -> None:
        for f in fields(self):  # type: ignore[arg-type]
            getattr(self, f.name).extend(getattr(other, f.name))


@dataclass(slots=True)
class InferenceRows(Columns):
    ws: list[int] = field(default_factory=list)
    inference_id: list[str] = field(default_factory=list)
    image_index: list[int] = field(default_factory=list)
    ts_us: list[int] = field(default_factory=list)
    received_us: list[int] = field(default_factory=list)
    model_id: list[str] = field(default_factory=list)
    task: list[str] = field(default_factory=list)
    device_id: list[str | None] = field(default_factory=list)
    tags: list[list[str]] = field(default_factory=list)
    source: list[str] = field(default_factory=list)
    inference_time: list[float | None] = field(default_factory=list)
    image_width: list[int | None] = field(default_factory=list)
    image_height: list[int | None] = field(default_factory=list)
    extra: list[str | None] = field(default_factory=list)
    n_predictions: list[int] = field(default_factory=list)
    p_class: list[str] = field(default_factory=list)
    p_class_id: list[int | None] = field(default_factory=list)
    p_confidence: list[float] = field(default_factory=list)
    p_x: list[float | None] = field(default_factory=list)
    p_y: list[float | None] = field(default_factory=list)
    p_width: list[float | None] = field(default_factory=list)
    p_height: list[float | None] = field(default_factory=list)
    p_detection_id: list[str | None] = field(default_factory=list)
    p_points: list[str | None] = field(default_factory=list)
    p_keypoints: list[str | None] = field(default_factory=list)

    def add(self, ws: int, inference_id: str, image_index: int, ts_us: int, received_us: int, model_id: str,
            task: str, device_id: str | None, tags: list[str], source: str, inference_time: float | None,
            image_width: int | None, image_height: int | None, extra: str | None) -> None:
        """An inference's own columns, once its predictions are in (`n_predictions`, `p_*`)."""
        self.ws.append(ws)
        self.inference_id.append(inference_id)
        self.image_index.append(image_index)
        self.ts_us.append(ts_us)
        self.received_us.append(received_us)
        self.model_id.append(model_id)
        self.task.append(task)
        self.device_id.append(device_id)
        self.tags.append(tags)
        self.source.append(source)
        self.inference_time.append(inference_time)
        self.image_width.append(image_width)
        self.image_height.append(image_height)
        self.extra.append(extra)

    def add_prediction(self, cls: str, class_id: int | None, confidence: float, x: float | None = None,
                       y: float | None = None, width: float | None = None, height: float | None = None,
                       detection_id: str | None = None, points: str | None = None,
                       keypoints: str | None = None) -> None:
        """One prediction of the inference being added; a classifier's verdict has no geometry."""
        self.p_class.append(cls)
        self.p_class_id.append(class_id)
        self.p_confidence.append(confidence)
        self.p_x.append(x)
        self.p_y.append(y)
        self.p_width.append(width)
        self.p_height.append(height)
        self.p_detection_id.append(detection_id)
        self.p_points.append(points)
        self.p_keypoints.append(keypoints)

    def to_arrow(self) -> pa.Table:
        offsets = list(accumulate(self.n_predictions, initial=0))
        # The `p_<field>` column of each field of PREDICTION_TYPE, as that field's type.
        predictions = pa.StructArray.from_arrays(
            [pa.array(getattr(self, f"p_{f.name}"), f.type) for f in PREDICTION_TYPE], fields=list(PREDICTION_TYPE))
        return pa.table(
            {
                "ws": pa.array(self.ws, pa.int32()),
                "inference_id": pa.array(self.inference_id, pa.string()),
                "image_index": pa.array(self.image_index, pa.int32()),
                "ts": pa.array(self.ts_us, pa.timestamp("us")),
                "received_at": pa.array(self.received_us, pa.timestamp("us")),
                "model_id": pa.array(self.model_id, pa.string()),
                "task": pa.array(self.task, pa.string()),
                "device_id": pa.array(self.device_id, pa.string()),
                "tags": pa.array(self.tags, pa.list_(pa.string())),
                "source": pa.array(self.source, pa.string()),
                "inference_time": pa.array(self.inference_time, pa.float64()),
                "image_width": pa.array(self.image_width, pa.int32()),
                "image_height": pa.array(self.image_height, pa.int32()),
                "extra": pa.array(self.extra, pa.string()),
                "predictions": pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), predictions),
            }
        )


@dataclass(slots=True)
class MetadataRows(Columns):
    """(inference_id, field_name, field_value) triples, each value with its kind and the number
    it reads as (`metavalues.py`); later entries win over earlier ones."""

    ws: list[int] = field(default_factory=list)
    inference_id: list[str] = field(default_factory=list)
    field_name: list[str] = field(default_factory=list)
    field_value: list[str] = field(default_factory=list)
    field_type: list[str] = field(default_factory=list)
    field_number: list[float | None] = field(default_factory=list)
    updated_us: list[int] = field(default_factory=list)

    def add(self, ws: int, inference_id: str, name: str, value: MetaScalar, now_us: int) -> None:
        """`value` as decoded from JSON: a string stays a string, a number or a flag stays one."""
        self.add_typed(ws, inference_id, name, *typed(value), now_us)

    def add_typed(self, ws: int, inference_id: str, name: str, text: str, kind: str, number: float | None,
                  now_us: int) -> None:
        """A value already typed (`metavalues.typed`), for a caller that keeps its text and number too."""
        self.ws.append(ws)
        self.inference_id.append(inference_id)
        self.field_name.append(name)
        self.field_value.append(text)
        self.field_type.append(kind)
        self.field_number.append(number)
        self.updated_us.append(now_us)

    def to_arrow(self) -> pa.Table:
        """Keeps only the last write per (workspace, inference_id, field): an upsert of one
        statement may name each key once, and the last one is the one that must win."""
        last = {key: i for i, key in enumerate(zip(self.ws, self.inference_id, self.field_name, strict=True))}
        keep = sorted(last.values())
        every = len(keep) == len(self.ws)  # no key twice (the common case): the lists as they are

        def column(values: list[Any], type_: pa.DataType) -> pa.Array:
            return pa.array(values if every else [values[i] for i in keep], type_)

        return pa.table(
            {
                "ws": column(self.ws, pa.int32()),
                "inference_id": column(self.inference_id, pa.string()),
                "field_name": column(self.field_name, pa.string()),
                "field_value": column(self.field_value, pa.string()),
                "updated_at": column(self.updated_us, pa.timestamp("us")),
                "field_type": column(self.field_type, pa.string()),
                "field_number": column(self.field_number, pa.float64()),
            }
        )


@dataclass(slots=True)
class DeviceRows(Columns):
    """Facts an inference server reports about itself, one entry per report; `seen_us` is when
    the report arrived. The store keeps one row per (workspace, device): first and last seen span
    every report, the other facts are the last report's (a fact a report leaves out, None, keeps
    the stored one)."""

    ws: list[int] = field(default_factory=list)
    device_id: list[str] = field(default_factory=list)
    seen_us: list[int] = field(default_factory=list)
    server_id: list[str | None] = field(default_factory=list)
    server_version: list[str | None] = field(default_factory=list)
    hostname: list[str | None] = field(default_factory=list)
    platform: list[str | None] = field(default_factory=list)
    tags: list[list[str] | None] = field(default_factory=list)

    def add(self, ws: int, device_id: str, seen_us: int, server_id: str | None, server_version: str | None,
            hostname: str | None, platform: str | None, tags: list[str] | None) -> None:
        self.ws.append(ws)
        self.device_id.append(device_id)
        self.seen_us.append(seen_us)
        self.server_id.append(server_id)
        self.server_version.append(server_version)
        self.hostname.append(hostname)
        self.platform.append(platform)
        self.tags.append(tags)

    def to_arrow(self) -> pa.Table:
        """One row per (workspace, device): an upsert may name each key once. first_seen and
        last_seen are the earliest and latest report; the facts are the latest report's."""
        first: dict[tuple[int, str], int] = {}
        last: dict[tuple[int, str], int] = {}
        for i, key in enumerate(zip(self.ws, self.device_id, strict=True)):
            if key not in first or self.seen_us[i] < self.seen_us[first[key]]:
                first[key] = i
            if key not in last or self.seen_us[i] >= self.seen_us[last[key]]:
                last[key] = i
        keep = list(last.values())
        return pa.table(
            {
                "ws": pa.array([self.ws[i] for i in keep], pa.int32()),
                "device_id": pa.array([self.device_id[i] for i in keep], pa.string()),
                "first_seen": pa.array(
                    [self.seen_us[first[(self.ws[i], self.device_id[i])]] for i in keep], pa.timestamp("us")),
                "last_seen": pa.array([self.seen_us[i] for i in keep], pa.timestamp("us")),
                "server_id": pa.array([self.server_id[i] for i in keep], pa.string()),
                "server_version": pa.array([self.server_version[i] for i in keep], pa.string()),
                "hostname": pa.array([self.hostname[i] for i in keep], pa.string()),
                "platform": pa.array([self.platform[i] for i in keep], pa.string()),
                "tags": pa.array([self.tags[i] for i in keep], pa.list_(pa.string())),
            }
        )


