"""Roboflow's Vision Events routes (`/vision-events/...`, docs/vision-events.md): events written
(one, a batch, an image upload), queried and deleted, and the schemas of a use case's metadata.

No workspace in the path: the key names it (Bearer header or `?api_key=`). An event is checked
whole before anything is written (its use case, the images it names, every limit), so a 400
stores nothing of its request; its rows then go through the writer in one call, answered once
committed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from inferwatch import images
from inferwatch.api.common import JSON, body_schema, read_body, read_raw, runtime
from inferwatch.api.images import MAX_UPLOAD_BYTES, keep_image, read_form
from inferwatch.api.use_cases import SolutionNotFound, lookback_days, resolve
from inferwatch.auth import Scope, require_key
from inferwatch.errors import InvalidRequest
from inferwatch.ingest import vision_events
from inferwatch.ingest.fields import decode
from inferwatch.ingest.vision_events import Event, Id, Metadata, Prepared, Size
from inferwatch.ingest.writer import Ticket
from inferwatch.query import events as event_query
from inferwatch.store.base import ImageRecord, Store
from inferwatch.store.events import ACTIVE, EventRecord, EventTables, schema_of
from inferwatch.store.rows import iso, to_us
from inferwatch.workspaces import Principal

log = logging.getLogger(__name__)
router = APIRouter(prefix="/vision-events")
Writer = Annotated[Principal, Depends(require_key(Scope.INGEST))]
Reader = Annotated[Principal, Depends(require_key(Scope.READ))]
MAX_DELETE = 1000


class Delete(msgspec.Struct, forbid_unknown_fields=True):
    useCaseId: Id
    eventIds: Annotated[list[Id], msgspec.Meta(min_length=1, max_length=MAX_DELETE)]


_decode_delete = msgspec.json.Decoder(Delete)
_decode_metadata = msgspec.json.Decoder(Metadata)


async def write_events(request: Request, who: Principal, events: list[Prepared],
                       new_images: Sequence[tuple[ImageRecord, bytes]] = (), ticket: Ticket | None = None) -> None:
    """Checks every event's use case and images, then writes them all in one writer call.

    `new_images` are images the events name that came with them (a bundle's members, an edge
    device's base64): checked already, but kept only once every check has passed, so a refused
    event leaves none of them behind. `ticket`: the request's `Writer.preparing`, closed as its
    rows are queued."""
    store = runtime(request).store
    ws = who.ws.id
    resolved: list[tuple[Prepared, str]] = []
    cases = {ref: resolve(store, ws, ref) for ref in {prepared.event.useCaseId for prepared in events}}
    for index, prepared in enumerate(events):
        where = f"events[{index}]." if len(events) > 1 else ""
        case = cases[prepared.event.useCaseId]
        if case is None:
            raise InvalidRequest(f"{where}useCaseId: no use case {prepared.event.useCaseId!r} in this workspace")
        if case.status != ACTIVE:
            raise InvalidRequest(f"{where}useCaseId: the use case {case.name!r} is archived; unarchive it first")
        resolved.append((prepared, case.id))
    _check_reviewed(store, ws, events)
    uploaded = {record.sha256: record for record, _ in new_images}
    for index, prepared in enumerate(events):
        for source_id in sorted(prepared.source_ids()):
            if source_id in uploaded:
                continue
            image = store.image(ws, source_id) if images.is_sha256(source_id) else None
            if image is None:
                where = f"events[{index}]." if len(events) > 1 else ""
                raise InvalidRequest(f"{where}images: unknown sourceId {source_id!r}; upload the image to"
                                     " /vision-events/upload first")
            uploaded[source_id] = image
    sizes = {source_id: Size(image.width, image.height) for source_id, image in uploaded.items()}
    # A batch naming an id twice means its last version.
    latest = list({prepared.event.eventId: (prepared, case) for prepared, case in resolved}.values())
    rows, meta, event_rows = vision_events.to_rows(latest, ws, sizes, time.time_ns() // 1000)
    bodies = {prepared.event.eventId: prepared.body for prepared, _ in latest}
    # The image an event shows becomes its inference's image, on the dashboard's inference page,
    # unless an earlier inference already holds those bytes (then there is nothing to write).
    shown: dict[str, ImageRecord] = {}
    for prepared, _ in latest:
        source = vision_events.shown_source(prepared.event)
        if source is not None and source not in shown and uploaded[source].inference_id is None:
            shown[source] = replace(uploaded[source], inference_id=prepared.event.eventId)
    for record, data in new_images:
        await keep_image(request, record, data)

    rt = runtime(request)
    part = vision_events.Write(ws, rows, meta, event_rows, bodies, list(shown.values()),
                               EventTables.of(rows, meta, event_rows))
    if await rt.writer.merged(part, vision_events.write_merged, len(event_rows), ticket) and rt.series is not None:
        # The per-model Prometheus series, as the writer counts its commits; a figure for
        # dashboards must never fail a write already made.
        try:
            rt.series.observe(rows)
        except Exception:
            log.exception("could not count committed rows for the model series")


def _check_reviewed(store: Store, ws: int, events: list[Prepared]) -> None:
    """Every operator_feedback event reviews an event the workspace holds, or one of the same
    request's other events (an event and its review may travel in one batch)."""
    sent = {p.event.eventId for p in events if p.verdict is None}
    wanted = {p.verdict[0] for p in events if p.verdict is not None} - sent
    if not wanted:
        return
    found = {record.event_id for record in store.find_events(ws, sorted(wanted))}
    for index, prepared in enumerate(events):
        if prepared.verdict is not None and prepared.verdict[0] in wanted - found:
            where = f"events[{index}]." if len(events) > 1 else ""
            raise InvalidRequest(f"{where}eventData.relatedEventId: no event {prepared.verdict[0]!r} in this workspace")


@router.post("", summary="Create a vision event (a re-sent eventId replaces it)", status_code=201,
             openapi_extra=body_schema(Event, "One event: id, type, use case, time, images, metadata"))
async def create_event(who: Writer, request: Request) -> JSON:
    with runtime(request).writer.preparing() as ticket:
        prepared = vision_events.decode_one(await read_body(request), datetime.now(UTC))
        await write_events(request, who, [prepared], ticket=ticket)
    return JSON({"eventId": prepared.event.eventId, "created": True, **warned(prepared)}, status_code=201)


def warned(prepared: Prepared) -> dict[str, list[str]]:
    """`{"ingestionWarnings": [...]}` of an event stored with warnings, else nothing: an answer
    adds the field only when there is something to say (Roboflow's clients read the others)."""
    return {"ingestionWarnings": list(prepared.warnings)} if prepared.warnings else {}


@router.post("/batch", summary="Create up to 100 vision events, all or none", status_code=201,
             openapi_extra=body_schema(vision_events.BatchBody, "`events`: 1 to 100 events, checked whole"))
async def create_batch(who: Writer, request: Request) -> JSON:
    # From the start: a batch arriving while others are written is written with them.
    with runtime(request).writer.preparing() as ticket:
        prepared = vision_events.decode_batch(await read_body(request), datetime.now(UTC))
        await write_events(request, who, prepared, ticket=ticket)
    answer: dict[str, object] = {"created": len(prepared), "eventIds": [p.event.eventId for p in prepared]}
    # The stored version's warnings, per event id that has any (an id sent twice: its last's).
    stored = {p.event.eventId: p for p in prepared}
    if warnings := {i: list(p.warnings) for i, p in stored.items() if p.warnings}:
        answer["ingestionWarnings"] = warnings
    return JSON(answer, status_code=201)


def image_record(who: Principal, checked: images.Checked, name: str | None) -> ImageRecord:
    """The row of an event's image, as every route that takes one keeps it."""
    return ImageRecord(
        ws=who.ws.id, sha256=checked.sha256, inference_id=None, content_type=checked.content_type,
        width=checked.width, height=checked.height, size_bytes=checked.size_bytes, name=name or None,
        project=None, batch=vision_events.SOURCE, tags=[], uploaded_at=datetime.now(UTC).replace(tzinfo=None))


@router.post("/upload", summary="Upload an event's image (multipart `file`): its sourceId and url", status_code=201)
async def upload_image(who: Writer, request: Request) -> JSON:
    body = await read_raw(request, MAX_UPLOAD_BYTES)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "multipart/form-data":
        raise InvalidRequest("the upload is a multipart/form-data form with the image as its `file` part")
    data, name, metadata = await read_form(request, body)
    if metadata is not None and metadata.strip():
        decode(_decode_metadata, metadata.encode())  # checked; an event's image carries its metadata
    if name is not None and len(name) > 256:
        raise InvalidRequest("name: longer than 256 characters")
    checked = await run_in_threadpool(images.inspect, data)
    record = image_record(who, checked, name)
    await keep_image(request, record, data)
    url = f"{str(request.base_url).rstrip('/')}/api/v1/{who.ws.slug}/images/{checked.sha256}"
    return JSON({"success": True, "sourceId": checked.sha256, "url": url}, status_code=201)


def _answer(record: EventRecord) -> dict[str, object]:
    event: dict[str, object] = msgspec.json.decode(record.body)
    event["receivedAt"] = iso(record.received_at)
    if record.warnings:
        event["ingestionWarnings"] = list(record.warnings)
    else:  # a client's own field of that name is an unknown field, so it always has a warning
        event.pop("ingestionWarnings", None)
    return event


@router.post("/query", summary="A use case's events, newest first, a page at a time",
             openapi_extra=body_schema(event_query.QueryBody, "The use case, filters, a page size and cursor"))
async def query_events(who: Reader, request: Request) -> JSON:
    body = await read_body(request)
    store = runtime(request).store
    ref = event_query.use_case_of(body)
    case = resolve(store, who.ws.id, ref)
    if case is None:
        raise SolutionNotFound(f"useCaseId: no use case {ref!r} in this workspace")
    query = event_query.parse(body, case.id)
    found = await run_in_threadpool(store.query_events, who.ws.id, query)
    page, more = found[:query.limit - 1], len(found) >= query.limit
    cursor = event_query.make_cursor(to_us(page[-1].ts), page[-1].event_id) if more and page else None
    return JSON({"events": [_answer(e) for e in page], "nextCursor": cursor, "hasMore": more,
                 "lookbackDays": lookback_days(store, who.ws.id)})


@router.post("/delete", summary="Delete events of a use case (at most 1,000 ids)",
             openapi_extra=body_schema(Delete, "The use case and the event ids"))
async def delete_events(who: Writer, request: Request) -> JSON:
    call = decode(_decode_delete, await read_body(request))
    store = runtime(request).store
    case = resolve(store, who.ws.id, call.useCaseId)
    if case is None:
        raise SolutionNotFound(f"useCaseId: no use case {call.useCaseId!r} in this workspace")
    ids = list(dict.fromkeys(call.eventIds))
    deleted: list[str] = await run_in_threadpool(
        runtime(request).writer.call, lambda target: target.delete_events(who.ws.id, case.id, ids))
    gone = set(deleted)
    return JSON({"deleted": len(deleted), "notFound": [i for i in ids if i not in gone]})


def _schema(request: Request, who: Principal, use_case_id: str, images_: bool) -> JSON:
    store = runtime(request).store
    case = resolve(store, who.ws.id, use_case_id)
    if case is None:
        raise SolutionNotFound()
    fields = schema_of(store.event_schema(who.ws.id, case.id, images_))
    return JSON({"useCaseId": case.id, "fields": {key: {"types": kinds} for key, kinds in fields.items()}})


@router.get("/custom-metadata-schema/{use_case_id}", summary="The custom-metadata keys of a use case's events")
def custom_metadata_schema(who: Reader, use_case_id: str, request: Request) -> JSON:
    return _schema(request, who, use_case_id, False)


@router.get("/image-metadata-schema/{use_case_id}", summary="The metadata keys of a use case's event images")
def image_metadata_schema(who: Reader, use_case_id: str, request: Request) -> JSON:
    return _schema(request, who, use_case_id, True)
