"""Images: Roboflow's dataset upload (what Active Learning and the Dataset Upload block send),
and serving an inference's image, whole or as a thumbnail.

The upload's workspace is its API key's (the path names only a Roboflow project, kept as a
label). Identical bytes in a workspace are one image: sending them again answers
`{"duplicate": true}`. An image is validated (format, bytes, pixels) before anything is kept.
The form's `metadata` (a JSON object) becomes metadata of the inference named by `inference_id`,
as if attached with the metadata API; without an id it is checked and dropped (an image row has
no metadata of its own).

This router is included before the inferences one: `/inferences/{id}/image` would otherwise be
taken by `/inferences/{id:path}`.
"""

from __future__ import annotations

import base64
import binascii
import logging
import time
from collections.abc import AsyncGenerator
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from inferwatch import diskspace, images
from inferwatch.api.common import JSON, read_raw, runtime
from inferwatch.auth import Reader, Scope, require_key
from inferwatch.errors import InvalidRequest, NotFound, PayloadTooLarge
from inferwatch.image_store import ImageStore
from inferwatch.ingest import limits
from inferwatch.ingest.fields import FieldName, metadata_value
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.store.base import ImageRecord
from inferwatch.workspaces import Principal

log = logging.getLogger(__name__)
router = APIRouter()

MAX_UPLOAD_BYTES = limits.MAX_IMAGE_BYTES + limits.MAX_IMAGE_FORM_BYTES
# The image's address never changes what it names; an inference's image may be replaced by a
# later upload, so that one is revalidated (cheap: 304 on the same ETag).
_IMMUTABLE = "private, max-age=31536000, immutable"
_REVALIDATE = "private, no-cache"


def image_path(workspace: str, inference_id: str) -> str:
    """Where an inference's image is served (for the inference's own answer)."""
    return f"/api/v1/{workspace}/inferences/{quote(inference_id, safe='')}/image"


def _files(request: Request) -> ImageStore:
    return runtime(request).images


# -- upload ----------------------------------------------------------------------------------------

async def read_form(request: Request, body: bytes) -> tuple[bytes, str | None, str | None]:
    """The image's bytes, its `name` and `metadata` fields, from a multipart body."""

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, stream(), max_files=4, max_fields=16,
                             max_part_size=limits.MAX_IMAGE_FORM_BYTES)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise InvalidRequest(f"bad multipart form: {exc.message}") from None
    try:
        field = form.get("file")
        if field is None:  # a client naming its file part otherwise: take the first file
            field = next((v for v in form.values() if isinstance(v, UploadFile)), None)
        if field is None:
            raise InvalidRequest("the form has no `file` part with the image")
        data = await field.read() if isinstance(field, UploadFile) else field.encode()
        name, metadata = form.get("name"), form.get("metadata")
        if not isinstance(name, str):
            name = field.filename if isinstance(field, UploadFile) else None
        return data, name, metadata if isinstance(metadata, str) else None
    finally:
        await form.close()


def _decode_plain(body: bytes) -> bytes:
    """A body that is not a form: the image's bytes, or its base64 (roboflow-python's older upload)."""
    text = body.strip()
    if text.startswith(b"data:"):  # a data URL
        text = text.partition(b",")[2]
    if text and len(text) % 4 == 0:
        try:
            return base64.b64decode(text, validate=True)
        except binascii.Error:
            pass
    return body


def _metadata(text: str | None, ws: int, inference_id: str | None) -> MetadataRows:
    """The form's `metadata` JSON object as metadata of the inference (nothing without an id).

    Scalars keep their type, like native ingest's; nested values are kept as their JSON text; nulls and
    empty strings are skipped.
    """
    rows = MetadataRows()
    if text is None or not text.strip():
        return rows
    try:
        fields = msgspec.json.decode(text, type=dict[FieldName, Any] | None) or {}
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise InvalidRequest(f"metadata must be a JSON object of fields: {exc}") from None
    if len(fields) > limits.MAX_METADATA_PER_ITEM:
        raise PayloadTooLarge(f"more than {limits.MAX_METADATA_PER_ITEM} metadata fields")
    if inference_id is None:
        return rows
    now_us = time.time_ns() // 1000
    for name, value in fields.items():
        if value is None or value == "":
            continue
        scalar = value if isinstance(value, str | int | float | bool) else msgspec.json.encode(value).decode()
        text_value = metadata_value(scalar)
        if len(text_value) > limits.MAX_FIELD_VALUE_LEN or "\0" in text_value:
            raise InvalidRequest(f"metadata field {name!r}: value longer than {limits.MAX_FIELD_VALUE_LEN}"
                                 " characters or holding NUL")
        rows.add(ws, inference_id, name, scalar, now_us)
    return rows


def _text(value: str | None, what: str, limit: int) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > limit:
        raise InvalidRequest(f"{what} longer than {limit} characters")
    return value


async def keep_image(request: Request, record: ImageRecord, data: bytes) -> bool:
    """Keeps a checked image's bytes, then its row; False if the workspace held them already."""
    files = _files(request)
    writer = runtime(request).writer

    def keep() -> bool:
        # Below the free-space floor nothing is written; looked at now, since an image is large.
        writer.refuse(fresh=True)
        # The file first, then its row: a row never names a missing file. A file left by a failed
        # insert is harmless (content-addressed: the next upload of these bytes reuses it); a file
        # that could not be written whole is removed (image_store.py).
        try:
            files.save(record.sha256, data)
        except OSError as exc:
            raise diskspace.refusal(exc, writer.disk) from None
        return writer.call(lambda store: store.insert_image(record))

    new: bool = await run_in_threadpool(keep)
    return new


@router.post(
    "/dataset/{project}/upload",
    summary="Upload an image (Roboflow dataset upload): multipart `file`, `name`, optional `metadata`",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {"type": "string", "format": "binary"},
                            "name": {"type": "string"},
                            "metadata": {"type": "string", "description": "a JSON object"},
                        },
                    }
                }
            },
        }
    },
)
async def upload(who: Annotated[Principal, Depends(require_key(Scope.INGEST))], project: str, request: Request) -> JSON:
    params = request.query_params
    inference_id = _text(params.get("inference_id"), "inference_id", limits.MAX_ID_LEN)
    batch = _text(params.get("batch") or params.get("batch_name"), "batch", limits.MAX_ID_LEN)
    tags = [t for t in params.getlist("tag") if t]
    if len(tags) > limits.MAX_IMAGE_TAGS:
        raise PayloadTooLarge(f"more than {limits.MAX_IMAGE_TAGS} tags")
    for tag in tags:
        _text(tag, "tag", limits.MAX_ID_LEN)
    _text(project, "project", limits.MAX_ID_LEN)

    body = await read_raw(request, MAX_UPLOAD_BYTES)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        data, name, metadata = await read_form(request, body)
    else:
        data, name, metadata = _decode_plain(body), params.get("name"), None
    name = _text(name, "name", limits.MAX_FIELD_VALUE_LEN)
    meta = _metadata(metadata, who.ws.id, inference_id)

    checked = await run_in_threadpool(images.inspect, data)
    record = ImageRecord(
        ws=who.ws.id, sha256=checked.sha256, inference_id=inference_id, content_type=checked.content_type,
        width=checked.width, height=checked.height, size_bytes=checked.size_bytes, name=name,
        project=project, batch=batch, tags=tags, uploaded_at=datetime.now(UTC).replace(tzinfo=None),
    )
    new = await keep_image(request, record, data)
    if len(meta):  # also on a duplicate: a client retrying after a 503 here gets it attached
        await runtime(request).writer.append(InferenceRows(), meta)
    if new:
        return JSON({"success": True, "id": checked.sha256})
    return JSON({"duplicate": True, "id": checked.sha256})


# -- serving ---------------------------------------------------------------------------------------

def _size(request: Request) -> int | None:
    """The thumbnail size asked (`?size=thumb`, `?size=N` or `?max=N`), None for the original."""
    params = request.query_params
    raw = params.get("max") or params.get("size")
    if raw is None or raw in ("", "original", "full"):
        return None
    if raw in ("thumb", "thumbnail"):
        return images.DEFAULT_THUMB
    try:
        wanted = int(raw)
    except ValueError:
        raise InvalidRequest("size is `thumb`, `original` or a number of pixels") from None
    if wanted < 1:
        raise InvalidRequest("size must be positive")
    return images.thumb_size(wanted)


def _serve(request: Request, image: ImageRecord | None, missing: str, cache: str) -> Response:
    """The image found (a 404 saying `missing` when none was), whole or as a thumbnail."""
    if image is None:
        raise NotFound(missing)
    size = _size(request)
    if size is not None and image.width is not None and image.height is not None \
            and max(image.width, image.height) <= size:
        size = None  # never scaled up: the original already fits
    etag = f'"{image.sha256}"' if size is None else f'"{image.sha256}-t{size}"'
    headers = {"ETag": etag, "Cache-Control": cache, "X-Content-Type-Options": "nosniff"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    try:
        if size is None:
            data, content_type = _files(request).read(image.sha256), image.content_type
        else:
            data, content_type = _files(request).thumbnail(image.sha256, size)
    except FileNotFoundError:
        log.warning("image %s is missing from the image store", image.sha256)
        raise NotFound("the image's bytes are missing from the image store") from None
    return Response(data, media_type=content_type, headers=headers)


@router.get(
    "/api/v1/{workspace}/inferences/{inference_id:path}/image",
    summary="The inference's uploaded image (`?size=thumb` or `?max=N` for a thumbnail)",
    response_class=Response,
)
def inference_image(who: Reader, inference_id: str, request: Request) -> Response:
    image = runtime(request).store.image_of_inference(who.ws.id, inference_id)
    return _serve(request, image, "no image was uploaded for this inference", _REVALIDATE)


@router.get(
    "/api/v1/{workspace}/images/{image_id}",
    summary="An uploaded image by the id its upload answered (`?size=thumb` or `?max=N`)",
    response_class=Response,
)
def image_by_id(who: Reader, image_id: str, request: Request) -> Response:
    image = runtime(request).store.image(who.ws.id, image_id.lower()) if images.is_sha256(image_id.lower()) else None
    return _serve(request, image, "no image with this id", _IMMUTABLE)
