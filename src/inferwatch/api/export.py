"""CSV export of the filtered inference list: the table a user sees, every page of it.

Streams page by page through the same keyset pagination as `/inferences`, so an export of a
large workspace holds one page in memory. Metadata columns are those named by `columns`
(`meta.<field>`, repeatable), or every field the workspace uses when none are named.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from inferwatch import labelling
from inferwatch.api.common import runtime
from inferwatch.api.inferences import inference_json
from inferwatch.auth import Reader
from inferwatch.errors import InvalidRequest
from inferwatch.ingest.fields import metadata_value
from inferwatch.ingest.metavalues import MetaScalar
from inferwatch.query.filters import META_PREFIX, Filters, meta_field, parse_filters
from inferwatch.store.base import Store

router = APIRouter(prefix="/api/v1/{workspace}")

PAGE = 1000
MAX_ROWS = 1_000_000
MAX_COLUMNS = 256
BASE_COLUMNS = ("inference_id", "image_index", "timestamp", "model_id", "task", "device_id", "tags",
                "n_predictions", "classes", "max_confidence", "inference_time", "image_width", "image_height")
# A spreadsheet runs a cell starting with one of these as a formula; numbers are left alone.
_FORMULA = re.compile(r"^[=+\-@\t\r]")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _meta_cell(value: MetaScalar | None) -> str:
    """A metadata value as the text it is stored as: a typed `true` stays `true`, not `True`."""
    return "" if value is None else cell(metadata_value(value))


def cell(value: Any) -> str:
    """A CSV cell: lists joined with `;`, and text that a spreadsheet would evaluate defused."""
    if value is None:
        return ""
    if isinstance(value, list):
        value = ";".join(str(v) for v in value)
    text = str(value)
    if _FORMULA.match(text) and not _NUMBER.match(text):
        return "'" + text
    return text


def _columns(request: Request, store: Store, ws: int) -> list[str]:
    named = request.query_params.getlist("columns")
    if not named:
        return [f.name for f in store.metadata_fields(ws, 0)]
    fields = []
    for name in named:
        field = meta_field(name)
        if field is None:
            raise InvalidRequest("columns are meta.<field>")
        fields.append(field)
    if len(fields) > MAX_COLUMNS:
        raise InvalidRequest(f"at most {MAX_COLUMNS} columns")
    return list(dict.fromkeys(fields))


def rows(store: Store, ws: int, filters: Filters, fields: list[str]) -> Iterator[str]:
    """The CSV text, header first, one page of inferences at a time."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([*BASE_COLUMNS, *(f"{META_PREFIX}{f}" for f in fields)])
    after = None
    sent = 0
    while sent < MAX_ROWS:
        page, after = store.list_inferences(ws, filters, after, min(PAGE, MAX_ROWS - sent))
        metadata = store.metadata_of(ws, [r.inference_id for r in page])
        for r in page:
            meta = metadata.get(r.inference_id, {})
            flat = {**inference_json(r), "image_width": r.image_width, "image_height": r.image_height}
            writer.writerow([cell(flat.get(c)) for c in BASE_COLUMNS] + [_meta_cell(meta.get(f)) for f in fields])
        sent += len(page)
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if after is None:
            return


@router.get("/export.csv", summary="The filtered inferences as CSV (every page; `columns=meta.<field>` picks"
            " metadata columns, default all)")
def export_csv(who: Reader, request: Request) -> StreamingResponse:
    filters = parse_filters(request.query_params.multi_items(), extra_keys=("columns",))
    store = runtime(request).store
    fields = _columns(request, store, who.ws.id)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        rows(store, who.ws.id, filters, fields), media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="inferences-{who.ws.slug}-{stamp}.csv"',
                 "X-Content-Type-Options": "nosniff"},
    )


@router.get("/export/dataset", summary="The filtered inferences' images with their predictions as pre-annotations,"
            " a zip in COCO or YOLO layout (`format=coco|yolo`), for relabelling")
def export_dataset(who: Reader, request: Request) -> StreamingResponse:
    filters = parse_filters(request.query_params.multi_items(), extra_keys=("format",))
    fmt = request.query_params.get("format", "coco")
    if fmt not in labelling.FORMATS:
        raise InvalidRequest(f"format must be one of {', '.join(labelling.FORMATS)}")
    rt = runtime(request)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        labelling.dataset_zip(rt.store, rt.images, who.ws.id, filters, fmt), media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="dataset-{who.ws.slug}-{fmt}-{stamp}.zip"'},
    )
