"""Roboflow-compatible routes: attach custom metadata, look up a key's workspace, the inference
server's model-monitoring reports and the stats answer."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from inferwatch.api.common import JSON, body_schema, limit_rate, read_body, request_key, runtime
from inferwatch.auth import Authorized, Reader, Scope, check, declare, principal, require_body
from inferwatch.errors import Forbidden, InvalidRequest, PayloadTooLarge, Unauthorized
from inferwatch.ingest import aggregator, fields, limits, pingback
from inferwatch.ingest.fields import FieldName, Name
from inferwatch.ingest.native import MetaValue
from inferwatch.ingest.rows import InferenceRows, MetadataRows
from inferwatch.query.filters import parse_time
from inferwatch.workspaces import Principal

router = APIRouter()
# `GET /{workspace}`: included after every other router, so no page or route is taken for it.
workspace_router = APIRouter()


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
<meta http-equiv="refresh" content="0; url=/overview">
<p>inferwatch is running: <a href="/overview">dashboard</a>.
API reference: <a href="/docs">/docs</a> (<a href="/openapi.json">OpenAPI</a>).</p>"""


# The Roboflow clients may send their key in the JSON body.
IngestBody = Annotated[Authorized, Depends(require_body(Scope.INGEST, _body_key))]


@router.get("/", summary="Workspace of an API key (Roboflow's `GET /?api_key=`)", response_model=None)
def workspace_lookup(request: Request, _: Annotated[None, Depends(declare(None))]) -> JSON | HTMLResponse:
    """Any valid key, whatever its scopes: an edge device with an `ingest` key resolves its
    workspace here before it reports."""
    if request_key(request) is None:
        return HTMLResponse(_LANDING)  # a browser, not a client resolving its workspace
    return JSON({"workspace": principal(request).ws.slug})


@router.post("/", summary="Workspace of an API key (the roboflow SDK's `Roboflow(api_key=...)`)")
def workspace_of_key(request: Request, _: Annotated[None, Depends(declare(None))]) -> JSON:
    """Any valid key: what `Roboflow(api_key=K)` posts (`POST /?api_key=K`, no body) to learn its
    workspace; a missing or wrong key is 401, which the SDK reports at once."""
    return JSON({"workspace": principal(request).ws.slug})


@workspace_router.get("/{workspace}", summary="A workspace as the roboflow SDK's `rf.workspace()` reads it")
def workspace_info(workspace: str, request: Request, _: Annotated[None, Depends(declare(None))]) -> JSON:
    """`GET /{workspace}?api_key=K`: the workspace of any valid key of it (no projects: inferwatch
    has none). This router is included last, so the dashboard's pages (`/overview`, `/alerts`,
    ...) and every other route are matched first. Without a key it is 401, as every workspace's
    route is, so no answer tells which workspaces exist."""
    who = principal(request)
    if who.ws.slug != workspace:
        raise Forbidden("this API key does not belong to that workspace")
    return JSON({"workspace": {"name": who.ws.slug, "url": who.ws.slug, "projects": [], "members": []}})


@router.post(
    "/{workspace}/inference-stats/metadata",
    summary="Attach custom metadata to inferences (Roboflow-compatible)",
    openapi_extra=body_schema(MetadataCall, "Entries naming inference ids, a field and its value"),
)
async def attach_metadata(auth: IngestBody, request: Request) -> JSON:
    ws, body = auth.who.ws, auth.body
    call = fields.decode(_decode_call, body)
    if len(call.data) > limits.MAX_METADATA_ENTRIES:
        raise PayloadTooLarge(f"at most {limits.MAX_METADATA_ENTRIES} entries per call")
    if sum(len(e.inference_ids) for e in call.data) > limits.MAX_IDS_PER_METADATA_CALL:
        raise PayloadTooLarge(f"at most {limits.MAX_IDS_PER_METADATA_CALL} inference ids per call")
    now_us = time.time_ns() // 1000
    meta = MetadataRows()
    for entry in call.data:
        # A number or a flag stays one; a string answers exactly as it was sent.
        for inference_id in entry.inference_ids:
            meta.add(ws.id, inference_id, entry.field_name, entry.field_value, now_us)
    await runtime(request).writer.append(InferenceRows(), meta)
    return JSON({"status": "ok", "updated": len(meta)})


# -- the inference server's reports (sections 3 and 4) ----------------------------------------

@router.post(
    "/inference-stats",
    summary="Model-monitoring report of Roboflow's `inference` server (its METRICS_URL)",
    openapi_extra=body_schema(pingback.Report, "What the server's PingbackInfo posts every METRICS_INTERVAL"),
)
async def server_report(request: Request, _: Annotated[None, Depends(declare(Scope.INGEST))]) -> JSON:
    """The key is the report's (header, query or body), else each result's own; every one must
    hold `ingest`. A body that is no report at all (no `inference_results`: a client pointed at
    the wrong URL) is a 400, not a 200 that stored nothing."""
    body = await read_body(request)
    report = pingback.decode(body)
    keys = runtime(request).keys
    outer = request_key(request, report.api_key)
    workspaces: list[int] = []
    report_ws = None
    if outer is not None:
        report_ws = check(principal(request, report.api_key), Scope.INGEST).ws.id
        workspaces = [report_ws] * len(report.inference_results)
    else:
        seen: set[str] = set()
        for index, key in enumerate(pingback.result_keys(report)):
            found: Principal | None = keys.principal(key) if key else None
            if found is None:
                raise Unauthorized(f"result {index}: missing, invalid, revoked or expired API key")
            check(found, Scope.INGEST)
            if found.key.key_id not in seen:  # each key pays once for the report
                seen.add(found.key.key_id)
                limit_rate(request, found.key.key_hash)
                keys.note_use(found)
            workspaces.append(found.ws.id)
    now_us = time.time_ns() // 1000
    rows, devices = pingback.to_rows(report, workspaces, now_us, report_ws)
    new = await runtime(request).writer.append_counted(rows, devices)
    return JSON({"status": "ok", "accepted": len(rows), "new": new})


@router.post(
    "/{workspace}/inference-stats",
    summary="Report of the workflow block model_monitoring_inference_aggregator",
    openapi_extra=body_schema(aggregator.Report, "The most confident prediction per class of a window"),
)
async def aggregator_report(auth: IngestBody, request: Request) -> JSON:
    ws, body = auth.who.ws, auth.body
    report = aggregator.decode(body)
    rows, devices = aggregator.to_rows(report, ws.id, time.time_ns() // 1000)
    new = await runtime(request).writer.append_counted(rows, devices)
    return JSON({"status": "ok", "accepted": len(rows), "new": new})


# -- section 5: the documented stats answer -----------------------------------------------------

_STATS_TIME = "%Y-%m-%d %H:%M:%S"


def _stats_time(value: str, name: str) -> datetime:
    """`YYYY-MM-DD HH:mm:ss` in UTC, as Roboflow documents it; ISO-8601 or unix seconds also do."""
    try:
        return datetime.strptime(value.strip(), _STATS_TIME).replace(tzinfo=UTC)
    except ValueError:
        return parse_time(value, name)


@router.get("/{workspace}/inference-stats", summary="Inference stats per model and class (Roboflow-compatible)")
async def inference_stats(who: Reader, request: Request) -> JSON:
    """`median_confidence` may come from the store's per-hour confidence histograms (1000 bins):
    then within 0.0005 of the exact median for confidences in [0, 1]. Every other figure is exact.

    The period and the one before it are read at once, each in a worker thread: the store's
    statements are short and spend much of their time in single-threaded parts, so side by side
    the two take about four fifths of what they take in turn (docs/performance.md)."""
    params = request.query_params
    end = _stats_time(params["endTime"], "endTime") if params.get("endTime") else datetime.now(UTC)
    start = _stats_time(params["startTime"], "startTime") if params.get("startTime") else end - timedelta(days=1)
    if end < start:
        raise InvalidRequest("endTime is before startTime")
    try:
        prev_start = start - (end - start)
    except OverflowError:
        raise InvalidRequest("startTime is out of range") from None
    models = tuple(m.strip() for m in params.get("modelNames", "").split(",") if m.strip())
    store = runtime(request).store
    cur, prev = await asyncio.gather(run_in_threadpool(store.class_stats, who.ws.id, start, end, models),
                                     run_in_threadpool(store.class_stats, who.ws.id, prev_start, start, models))
    rows = []
    for model, cls in sorted(cur.classes.keys() | prev.classes.keys()):
        now = cur.classes.get((model, cls))
        before = prev.classes.get((model, cls))
        rows.append({
            "model_name": model,
            "predicted_class": cls,
            "num_inferences": now.inferences if now else 0,
            "prev_num_inferences": before.inferences if before else 0,
            "num_errors": 0,
            "prev_num_errors": 0,
            "avg_confidence": now.avg_confidence if now else None,
            "prev_avg_confidence": before.avg_confidence if before else None,
            "avg_response_time": now.avg_inference_time if now else None,
            "prev_avg_response_time": before.avg_inference_time if before else None,
            "median_confidence": now.median_confidence if now else None,
            "class_count": now.predictions if now else 0,
            "prev_class_count": before.predictions if before else 0,
            "deployment_types": "self-hosted",
            "inference_server_versions": ", ".join(now.versions) if now and now.versions else None,
            "model_num_inferences": cur.models.get(model, 0),
            "prev_model_num_inferences": prev.models.get(model, 0),
        })
    return JSON({
        "num_inferences": cur.inferences,
        "prev_num_inferences": prev.inferences,
        "num_errors": 0,
        "prev_num_errors": 0,
        "avg_confidence": cur.avg_confidence,
        "prev_avg_confidence": prev.avg_confidence,
        "avg_response_time": cur.avg_inference_time,
        "prev_avg_response_time": prev.avg_inference_time,
        "inference_stats": rows,
    })
