"""Roboflow-compatible routes: attach custom metadata, look up a key's workspace."""

from __future__ import annotations

import time
from typing import Annotated

import msgspec
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from inferwatch.api.common import (
    JSON,
    authorize,
    body_schema,
    read_body,
    request_key,
    runtime,
    workspace_of_key,
)
from inferwatch.errors import InvalidRequest, PayloadTooLarge
from inferwatch.ingest import limits
from inferwatch.ingest.fields import FieldName, Name, metadata_value
from inferwatch.ingest.native import MetaValue
from inferwatch.ingest.rows import InferenceRows, MetadataRows

router = APIRouter()


class MetadataEntry(msgspec.Struct):
    inference_ids: Annotated[list[Name], msgspec.Meta(min_length=1)]
    field_name: FieldName
    field_value: MetaValue


class MetadataCall(msgspec.Struct):
    data: list[MetadataEntry]
    api_key: str | None = None


class _KeyOnly(msgspec.Struct):
    api_key: str | None = None


_decode_call = msgspec.json.Decoder(MetadataCall)
_decode_key = msgspec.json.Decoder(_KeyOnly)


def _body_key(body: bytes) -> str | None:
    """The key a malformed body may still carry, so auth is answered before validation."""
    try:
        return _decode_key.decode(body).api_key
    except msgspec.DecodeError:
        return None


_LANDING = """<!doctype html><meta charset="utf-8"><title>inferwatch</title>
<p>inferwatch is running. API reference: <a href="/docs">/docs</a> (<a href="/openapi.json">OpenAPI</a>).</p>"""


@router.get("/", summary="Workspace of an API key (Roboflow's `GET /?api_key=`)", response_model=None)
def workspace_lookup(request: Request) -> JSON | HTMLResponse:
    if request_key(request) is None:
        return HTMLResponse(_LANDING)  # a browser, not a client resolving its workspace
    ws = workspace_of_key(request)
    return JSON({"workspace": ws.slug})


@router.post(
    "/{workspace}/inference-stats/metadata",
    summary="Attach custom metadata to inferences (Roboflow-compatible)",
    openapi_extra=body_schema(MetadataCall, "Entries naming inference ids, a field and its value"),
)
async def attach_metadata(workspace: str, request: Request) -> JSON:
    if request_key(request) is not None:
        # Header or query key: refuse a bad one before reading (and inflating) the body.
        ws = authorize(request, workspace)
        body = await read_body(request)
    else:
        body = await read_body(request)
        ws = authorize(request, workspace, _body_key(body))
    try:
        call = _decode_call.decode(body)
    except msgspec.DecodeError as exc:
        raise InvalidRequest(str(exc)) from None
    if len(call.data) > limits.MAX_METADATA_ENTRIES:
        raise PayloadTooLarge(f"at most {limits.MAX_METADATA_ENTRIES} entries per call")
    if sum(len(e.inference_ids) for e in call.data) > limits.MAX_IDS_PER_METADATA_CALL:
        raise PayloadTooLarge(f"at most {limits.MAX_IDS_PER_METADATA_CALL} inference ids per call")
    now_us = time.time_ns() // 1000
    meta = MetadataRows()
    for entry in call.data:
        value = metadata_value(entry.field_value)
        for inference_id in entry.inference_ids:
            meta.add(ws.id, inference_id, entry.field_name, value, now_us)
    await runtime(request).writer.append(InferenceRows(), meta)
    return JSON({"status": "ok", "updated": len(meta)})
