"""The Python both stores share around their SQL, so that neither imports the other: the columns
their tables are read by, times as the API writes them, and result rows shaped into answers.
The SQL stays each backend's own (the dialects differ); what a row becomes does not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, overload

import msgspec

from inferwatch.ingest.metavalues import MetaScalar, answer_value
from inferwatch.store.base import ClassFigures, ClassStats, FieldValue, ImageRecord, InferenceRow, MetadataField

EPOCH = datetime(1970, 1, 1)
# An inference as the list and the detail page read it, in `inference()`'s order.
LIST_COLUMNS = (
    "inference_id, image_index, ts, received_at, model_id, task, device_id, tags, source,"
    " inference_time, image_width, image_height, n_predictions, max_confidence, classes,"
    " predictions, extra"
)
# The images table's columns are ImageRecord's fields, in its order, so a record binds as its tuple.
IMAGE_COLUMNS = ", ".join(f.name for f in fields(ImageRecord))
# Tables `usage` reports, each with a column naming the workspace.
USAGE_TABLES = ("inferences", "metadata", "devices", "images", "alert_events", "events")
# A class mix per group lists this many classes; the comparison table shows the top few.
MAX_GROUP_CLASSES = 5

_decode_json = msgspec.json.decode
R = TypeVar("R")


def naive_utc(value: datetime) -> datetime:
    """A time as the naive UTC value the tables hold."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo is not None else value


def now_utc() -> datetime:
    """Now, as the tables hold times (naive UTC)."""
    return datetime.now(UTC).replace(tzinfo=None)


def to_us(value: datetime) -> int:
    """Microseconds since the epoch of a time the tables hold (naive UTC)."""
    return (naive_utc(value) - EPOCH) // timedelta(microseconds=1)


@overload
def iso(value: datetime) -> str: ...
@overload
def iso(value: datetime | None) -> str | None: ...
def iso(value: datetime | None) -> str | None:
    """A time as every answer writes it: ISO 8601 in UTC with a `Z`. Naive times are UTC (as
    the stores keep them); others are converted."""
    return None if value is None else naive_utc(value).isoformat() + "Z"


def _prediction(p: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in p.items() if v is not None and k not in ("points", "keypoints")}
    if p.get("points") is not None:
        out["points"] = _decode_json(p["points"])
    if p.get("keypoints") is not None:
        out["keypoints"] = _decode_json(p["keypoints"])
    return out


def inference(row: tuple[Any, ...]) -> InferenceRow:
    """A row of `LIST_COLUMNS`."""
    (inference_id, image_index, ts, received_at, model_id, task, device_id, tags, source,
     inference_time, width, height, n_predictions, max_confidence, classes, predictions, extra) = row
    return InferenceRow(inference_id, image_index, naive_utc(ts), naive_utc(received_at), model_id, task, device_id,
                        tags, source, inference_time, width, height, n_predictions, max_confidence, classes,
                        [_prediction(p) for p in predictions], _decode_json(extra) if extra else {})


def records(kind: Callable[..., R], rows: Iterable[Sequence[Any]]) -> list[R]:
    """Rows whose columns are the record's fields in order (a `SeriesPoint`, `NumericPoint`,
    `Device`, `ModelSummary` or `GroupRow`), every time made naive UTC whichever way the driver
    returned it."""
    return [kind(*(naive_utc(v) if isinstance(v, datetime) else v for v in row)) for row in rows]


def class_stats(per_model: list[tuple[Any, ...]], predictions: list[tuple[Any, ...]],
                inferences: dict[tuple[str, str], tuple[int, list[str]]]) -> ClassStats:
    """A period's figures from (model, inferences, confidence sum, predictions, time sum,
    timed) per model; (model, class, predictions, avg and median confidence, avg time) per class;
    and per (model, class) the inferences holding it and their server versions. The totals are
    summed from the per-model sums, the same way on both stores, so the floating-point figures
    agree."""
    n = sum(row[1] for row in per_model)
    confidence_sum = sum(row[2] or 0.0 for row in per_model)
    n_predictions = sum(row[3] or 0 for row in per_model)
    time_sum = sum(row[4] or 0.0 for row in per_model)
    n_timed = sum(row[5] for row in per_model)
    classes = {}
    for m, c, k, ac, mc, rt in sorted(predictions):
        held, versions = inferences.get((m, c), (0, []))
        classes[(m, c)] = ClassFigures(held, k, ac, mc, rt, versions)
    return ClassStats(n, confidence_sum / n_predictions if n_predictions else None,
                      time_sum / n_timed if n_timed else None, {row[0]: row[1] for row in per_model}, classes)


def metadata_of(rows: list[tuple[Any, ...]]) -> dict[str, dict[str, MetaScalar]]:
    """Rows of (inference id, field, text, kind), fields in order: each inference's fields, each
    value as the JSON type it was sent as."""
    out: dict[str, dict[str, MetaScalar]] = {}
    for inference_id, name, value, kind in rows:
        out.setdefault(inference_id, {})[name] = answer_value(value, kind)
    return out


def metadata_fields(fields: list[tuple[Any, ...]], values: list[tuple[Any, ...]]) -> list[MetadataField]:
    """Rows of (field, distinct values, rows, kinds) and of (field, value, rows), the top values
    of each field in order."""
    tops: dict[str, list[FieldValue]] = {}
    for name, value, n in values:
        tops.setdefault(name, []).append(FieldValue(value, n))
    return [MetadataField(name, distinct, n, tops.get(name, []), sorted(kinds))
            for name, distinct, n, kinds in fields]


def ranked_classes(counts: Counter[str], n: int) -> list[tuple[str, int]]:
    """A group's `n` most held classes, most first, then by name (a group table's class mix)."""
    ranked = sorted(((c, k) for c, k in counts.items() if k > 0), key=lambda ck: (-ck[1], ck[0]))
    return ranked[:n]


def class_mix(rows: list[tuple[Any, ...]]) -> dict[Any, list[tuple[str, int]]]:
    """Rows of (group, class, inferences), each group's classes in order, as lists per group."""
    out: dict[Any, list[tuple[str, int]]] = {}
    for g, c, n in rows:
        out.setdefault(g, []).append((c, int(n)))
    return out
