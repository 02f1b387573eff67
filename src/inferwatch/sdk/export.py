"""Inferences as flat rows a data scientist can load: one row per inference, metadata fields as
columns, written as Parquet or CSV with pyarrow (already a dependency of inferwatch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

FORMATS = ("parquet", "csv")


def flatten(inference: dict[str, Any]) -> dict[str, Any]:
    predictions = inference.get("predictions") or []
    top = max(predictions, key=lambda p: p.get("confidence") or 0.0, default=None)
    row: dict[str, Any] = {
        "timestamp": inference.get("timestamp"),
        "inference_id": inference.get("inference_id"),
        "image_index": inference.get("image_index"),
        "model_id": inference.get("model_id"),
        "device_id": inference.get("device_id"),
        "task": inference.get("task"),
        "tags": ",".join(inference.get("tags") or []),
        "inference_time": inference.get("inference_time"),
        "n_predictions": len(predictions),
        "classes": ",".join(inference.get("classes") or []),
        "top_class": top.get("class") if top else None,
        "top_confidence": top.get("confidence") if top else None,
    }
    for name, value in (inference.get("metadata") or {}).items():
        row[f"meta.{name}"] = value
    return row


def to_table(rows: list[dict[str, Any]]) -> pa.Table:
    """Columns are the union over rows (metadata fields differ between inferences). A metadata
    field is typed: a column of numbers is numeric, of flags boolean; one whose values were
    sent as different types (151.5 here, "n/a" there) holds each value's text."""
    columns: dict[str, None] = {}
    for row in rows:
        columns.update(dict.fromkeys(row))
    return pa.table({name: _column([row.get(name) for row in rows]) for name in columns})


def _column(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return pa.array([None if v is None else _text(v) for v in values], pa.string())


def _text(value: Any) -> str:
    """A value as the server keeps its text: a flag is `true`/`false`, as sent in JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def write(rows: list[dict[str, Any]], path: Path, format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"format must be one of {FORMATS}")
    table = to_table(rows)
    if format == "parquet":
        pq.write_table(table, path)
    else:
        pa_csv.write_csv(table, path)


def to_frame(rows: list[dict[str, Any]], kind: str) -> Any:
    table = to_table(rows)
    if kind == "pandas":
        return table.to_pandas()
    if kind == "polars":
        import polars

        return polars.from_arrow(table)
    raise ValueError("kind must be `pandas` or `polars`")
