"""Native inference routes: batch ingest (JSON or NDJSON), filtered listing, one inference."""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

import msgspec
from fastapi import APIRouter, Request

from inferwatch.api.common import JSON, body_schema, read_body, runtime, whole_number
from inferwatch.api.images import image_path
from inferwatch.auth import Ingester, Reader
from inferwatch.errors import InvalidRequest, NotFound
from inferwatch.ingest import native
from inferwatch.query.filters import parse_filters
from inferwatch.store.base import Cursor, InferenceRow
from inferwatch.store.rows import iso

router = APIRouter(prefix="/api/v1/{workspace}")

MAX_PAGE = 1000
DEFAULT_PAGE = 50
# A cursor's time must fit a datetime (years 1..9999, in microseconds from 1970).
_MIN_CURSOR_US = -62_135_596_800_000_000
_MAX_CURSOR_US = 253_402_300_799_999_999


@router.post(
    "/inferences",
    summary="Ingest a batch of inference results",
    openapi_extra=body_schema(
        native.Batch,
        "`{\"inferences\": [ITEM, ...]}`, or NDJSON (one ITEM a line) with"
        " `Content-Type: application/x-ndjson`; gzip with `Content-Encoding: gzip`.",
        ("application/json", "application/x-ndjson"),
    ),
)
async def ingest(who: Ingester, request: Request) -> JSON:
    body = await read_body(request)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in ("application/x-ndjson", "application/jsonl", "application/jsonlines"):
        items = native.decode_ndjson(body)
    else:
        items = native.decode_json(body)
    rows, meta, ids = native.to_rows(items, who.ws.id, time.time_ns() // 1000)
    # The decoded items die here, young, rather than outlive the commit's wait in this frame: the
    # collector would otherwise move their lists to the oldest generation and scan them there.
    del items, body
    await runtime(request).writer.append(rows, meta)
    return JSON({"status": "ok", "accepted": len(ids), "inference_ids": ids})


def _encode_cursor(cursor: Cursor) -> str:
    raw = msgspec.json.encode([cursor.ts_us, cursor.inference_id, cursor.image_index])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(text: str) -> Cursor:
    try:
        ts_us, inference_id, image_index = msgspec.json.decode(
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), type=tuple[int, str, int]
        )
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise InvalidRequest("cursor is not one this server gave out") from None
    if not _MIN_CURSOR_US <= ts_us <= _MAX_CURSOR_US or not 0 <= image_index < 2**31:
        raise InvalidRequest("cursor is not one this server gave out")
    return Cursor(ts_us, inference_id, image_index)


def inference_json(row: InferenceRow) -> dict[str, Any]:
    """An inference as the list, the detail page and the export write it: the image's size
    nested, and its format's other fields beside the rest."""
    out = msgspec.structs.asdict(row)
    extra = out.pop("extra")
    out.update(timestamp=iso(row.timestamp), received_at=iso(row.received_at),
               image={"width": out.pop("image_width"), "height": out.pop("image_height")})
    return out | extra


@router.get("/inferences", summary="Inferences matching the filters, newest first, a page at a time")
def list_inferences(who: Reader, request: Request) -> JSON:
    params = request.query_params
    filters = parse_filters(params.multi_items(), extra_keys=("limit", "cursor"))
    limit = whole_number(params.get("limit"), "limit", DEFAULT_PAGE, MAX_PAGE)
    after = _decode_cursor(params["cursor"]) if params.get("cursor") else None
    store = runtime(request).store
    page, following = store.list_inferences(who.ws.id, filters, after, limit)
    metadata = store.metadata_of(who.ws.id, [r.inference_id for r in page])
    rows = [inference_json(row) | {"metadata": metadata.get(row.inference_id, {})} for row in page]
    next_cursor = _encode_cursor(following) if following else None
    return JSON({"inferences": rows, "next_cursor": next_cursor})


@router.get("/inferences/{inference_id:path}", summary="One inference with its predictions and metadata")
def get_inference(who: Reader, inference_id: str, request: Request) -> JSON:
    store = runtime(request).store
    images = store.get_inference(who.ws.id, inference_id)
    metadata = store.metadata_of(who.ws.id, [inference_id]).get(inference_id, {})
    if not images:
        if metadata:
            raise NotFound({"message": "metadata was attached to this id, but no inference with it has"
                            " arrived yet", "metadata": metadata})
        raise NotFound("no inference with this id")
    wanted = request.query_params.get("image_index")
    found = next((img for img in images if wanted is None or str(img.image_index) == wanted), None)
    if found is None:
        raise NotFound(f"inference has no image {wanted}")
    uploaded = store.image_of_inference(who.ws.id, inference_id)
    return JSON(inference_json(found) | {"metadata": metadata, "image_count": len(images),
                                         "image_url": image_path(who.ws.slug, inference_id) if uploaded else None})

