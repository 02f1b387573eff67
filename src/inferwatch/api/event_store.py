"""`POST /v2/events`: the edge event store's route (Roboflow's local Event Ingestion Service), so
an edge device's "Roboflow Vision Events" workflow block with `write_to_event_store` writes
straight to inferwatch (docs/vision-events.md).

Its client differs from every other in three ways, each kept here alone: the key comes in
`X-API-Key` (Bearer and `?api_key=` work too); the client reads a refusal's `detail` only, so
every error here has one, a string, beside `error`; and it knows the writer's backpressure as 529
("at capacity"), so the writer's 503 Overloaded is 529 here, with the same `Retry-After`.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any

import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from inferwatch import images
from inferwatch.api.common import JSON, body_schema, read_body
from inferwatch.api.vision_events import image_record, warned, write_events
from inferwatch.auth import Scope, require_header_key
from inferwatch.errors import ApiError, InvalidRequest, Overloaded
from inferwatch.ingest import event_store, vision_events
from inferwatch.store.base import ImageRecord
from inferwatch.workspaces import Principal

KEY_HEADER = "x-api-key"
AT_CAPACITY = 529


class _EdgeRoute(APIRoute):
    """Refusals as the event store's client reads them: `detail` always a string, 529 for the
    writer's overload."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                body = exc.body()
                body["detail"] = f"{exc.error}: {exc.detail}" if exc.detail is not None else exc.error
                status = AT_CAPACITY if isinstance(exc, Overloaded) else exc.status
                return JSON(body, status_code=status, headers=exc.headers)
        return route


router = APIRouter(prefix="/v2", route_class=_EdgeRoute)
Writer = Annotated[Principal, Depends(require_header_key(Scope.INGEST, KEY_HEADER))]


@router.post("/events", summary="Write an event as the edge event store takes it (snake_case, base64 images)",
             status_code=201, openapi_extra=body_schema(
                 event_store.EdgeEvent, "One event: time, use case (`solution`), type (`event_schema`), images"
                 " with their bytes as base64 (`base64Image`, `inputBase64Image`) and annotations"))
async def create_event(who: Writer, request: Request) -> JSON:
    mapped = event_store.decode(await read_body(request))
    checked = {placeholder: await run_in_threadpool(images.inspect_part, placeholder, data)
               for placeholder, data in mapped.blobs.items()}
    event = event_store.with_source_ids(mapped, {p: found.sha256 for p, found in checked.items()})
    try:
        prepared = vision_events.decode_one(msgspec.json.encode(event), datetime.now(UTC))
    except ApiError as exc:
        raise event_store.renamed(exc) from None
    # The warnings as the client names its fields, the outer keys the mapping left out first.
    prepared = replace(prepared, warnings=(*mapped.unknown, *map(event_store.renamed_text, prepared.warnings)))
    fresh: dict[str, tuple[ImageRecord, bytes]] = {}
    for placeholder, found in checked.items():
        fresh.setdefault(found.sha256, (image_record(who, found, None), mapped.blobs[placeholder]))
    try:
        await write_events(request, who, [prepared], list(fresh.values()))
    except InvalidRequest as exc:
        raise event_store.renamed(exc) from None
    return JSON({"id": prepared.event.eventId, **warned(prepared)}, status_code=201)
