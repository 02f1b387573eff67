"""`POST /vision-events/bundle`: an air-gapped device's Vision Event, as the "Write Vision Event
Bundle" workflow block wrote it to disk, uploaded later as the raw body (docs/vision-events.md).

Everything is checked before anything is kept (the archive, its images as every upload is, the
event as `POST /vision-events` checks it, its use case); then the images are stored and the event
written through the same path as that route, so a refused bundle leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from inferwatch import images
from inferwatch.api.common import JSON, read_raw
from inferwatch.api.vision_events import image_record, warned, write_events
from inferwatch.auth import Scope, require_key
from inferwatch.ingest import bundle, vision_events
from inferwatch.store.base import ImageRecord
from inferwatch.workspaces import Principal

router = APIRouter(prefix="/vision-events")
Writer = Annotated[Principal, Depends(require_key(Scope.INGEST))]


@router.post("/bundle", summary="Create a vision event from a bundle (.tar.gz or .tar body, at most 25 MiB)",
             status_code=201,
             openapi_extra={"requestBody": {
                 "required": True, "description": "the bundle's bytes, a .tar.gz or .tar (any Content-Type)",
                 "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
async def upload_bundle(who: Writer, request: Request) -> JSON:
    body = await read_raw(request, bundle.MAX_BUNDLE_BYTES)
    unpacked = await run_in_threadpool(bundle.unpack, body)
    members = bundle.members_named(unpacked)
    checked = {member: await run_in_threadpool(images.inspect_part, f"member {member!r}", unpacked.files[member])
               for member in members}
    source_ids = {member: found.sha256 for member, found in checked.items()}
    event = bundle.event_body(unpacked, request.query_params.get("useCaseId"), source_ids)
    prepared = vision_events.decode_one(msgspec.json.encode(event), datetime.now(UTC))
    prepared = replace(prepared, warnings=(*prepared.warnings, *bundle.warnings(unpacked, members)))
    fresh: dict[str, tuple[ImageRecord, bytes]] = {}
    for member, found in checked.items():
        fresh.setdefault(found.sha256, (image_record(who, found, member.rsplit("/", 1)[-1]), unpacked.files[member]))
    await write_events(request, who, [prepared], list(fresh.values()))
    return JSON({"eventId": prepared.event.eventId, "created": True, "sourceIds": source_ids, **warned(prepared)},
                status_code=201)
