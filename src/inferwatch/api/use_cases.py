"""Vision Events use cases (`/vision-events/use-cases`): list, create, rename or set status,
archive and unarchive, with Roboflow's answers and messages (use cases are "solutions" in them).

A name is unique in its workspace: the check and the write run together in the writer thread,
so two requests racing with one name cannot both win. An archived (`inactive`) use case keeps its
events and refuses new ones (`resolve`).
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from inferwatch.api.common import JSON, body_schema, read_body, runtime
from inferwatch.auth import Scope, require_key
from inferwatch.errors import InvalidRequest, NotFound
from inferwatch.ingest.fields import decode
from inferwatch.store.base import Store
from inferwatch.store.events import ACTIVE, INACTIVE, UseCaseRecord
from inferwatch.store.rows import iso
from inferwatch.workspaces import Principal

router = APIRouter(prefix="/vision-events")
Reader = Annotated[Principal, Depends(require_key(Scope.READ))]
Manager = Annotated[Principal, Depends(require_key(Scope.MANAGE))]
DEFAULT_LOOKBACK_DAYS = 14
_ID_CHARS = string.ascii_letters + string.digits


class SolutionNotFound(NotFound):
    error = "Solution not found"


class DuplicateName(InvalidRequest):
    error = "A solution with this name already exists"


class NotArchived(InvalidRequest):
    error = "Solution is not archived"


Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256, pattern=r"^[^\x00-\x1f\x7f]+$")]


class Create(msgspec.Struct, forbid_unknown_fields=True):
    name: Name


class Update(msgspec.Struct, forbid_unknown_fields=True):
    name: Name | None = None
    status: Annotated[str, msgspec.Meta(pattern=f"^({ACTIVE}|{INACTIVE})$")] | None = None


_decode_create = msgspec.json.Decoder(Create)
_decode_update = msgspec.json.Decoder(Update)


def resolve(store: Store, ws: int, ref: str) -> UseCaseRecord | None:
    """A use case by id, else by exact name (older Roboflow examples send the name)."""
    cases = store.use_cases(ws)
    return next((c for c in cases if c.id == ref), None) or next((c for c in cases if c.name == ref), None)


def lookback_days(store: Store, ws: int) -> int:
    """The workspace's retention in days when a policy sets one, else Roboflow's default."""
    policy = store.retention_policy(ws)
    return policy.max_days if policy is not None and policy.max_days is not None else DEFAULT_LOOKBACK_DAYS


def _trimmed(name: str) -> str:
    name = name.strip()
    if not name:
        raise InvalidRequest("name: must not be blank")
    return name


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def _change(request: Request, ws: int, use_case_id: str, name: str | None, status: str | None,
                  must_be_archived: bool = False) -> UseCaseRecord:
    """Renames and/or sets the status of a use case, in the writer thread (the name check with it)."""
    def change(store: Store) -> UseCaseRecord:
        cases = store.use_cases(ws)
        found = next((c for c in cases if c.id == use_case_id), None)
        if found is None:
            raise SolutionNotFound()
        if must_be_archived and found.status != INACTIVE:
            raise NotArchived()
        if name is not None and any(c.name == name and c.id != found.id for c in cases):
            raise DuplicateName()
        changed = UseCaseRecord(ws, found.id, name or found.name, status or found.status, found.created_at, _now())
        store.put_use_case(changed)
        return changed
    changed: UseCaseRecord = await run_in_threadpool(runtime(request).writer.call, change)
    return changed


@router.get("/use-cases", summary="Vision Events use cases (`?status=active|inactive`, active by default)")
def list_use_cases(who: Reader, request: Request) -> JSON:
    status = request.query_params.get("status", ACTIVE)
    if status not in (ACTIVE, INACTIVE):
        raise InvalidRequest(f"status: {ACTIVE} or {INACTIVE}, got {status!r}")
    store = runtime(request).store
    figures = store.use_case_figures(who.ws.id)
    cases = []
    for case in store.use_cases(who.ws.id):
        if case.status != status:
            continue
        found = figures.get(case.id)
        cases.append({"id": case.id, "name": case.name, "status": case.status, "workspaceId": who.ws.slug,
                      "createdAt": iso(case.created_at), "updatedAt": iso(case.updated_at),
                      "eventCount": found.events if found else 0,
                      "lastEventAt": iso(found.last_event_at) if found else None})
    return JSON({"useCases": cases, "lookbackDays": lookback_days(store, who.ws.id)})


@router.post("/use-cases", summary="Create a use case", status_code=201,
             openapi_extra=body_schema(Create, "Its name, unique in the workspace"))
async def create_use_case(who: Manager, request: Request) -> JSON:
    name = _trimmed(decode(_decode_create, await read_body(request)).name)
    ws = who.ws.id

    def create(store: Store) -> UseCaseRecord:
        if any(c.name == name for c in store.use_cases(ws)):
            raise DuplicateName()
        now = _now()
        record = UseCaseRecord(ws, "".join(secrets.choice(_ID_CHARS) for _ in range(20)), name, ACTIVE, now, now)
        store.put_use_case(record)
        return record

    record: UseCaseRecord = await run_in_threadpool(runtime(request).writer.call, create)
    return JSON({"id": record.id, "name": record.name}, status_code=201)


@router.put("/use-cases/{use_case_id}", summary="Rename a use case, or set its status",
            openapi_extra=body_schema(Update, "`name` and/or `status` (active, inactive)"))
async def update_use_case(who: Manager, use_case_id: str, request: Request) -> JSON:
    update = decode(_decode_update, await read_body(request))
    if update.name is None and update.status is None:
        raise InvalidRequest("give a `name`, a `status` or both")
    name = _trimmed(update.name) if update.name is not None else None
    record = await _change(request, who.ws.id, use_case_id, name, update.status)
    return JSON({"id": record.id, "name": record.name})


@router.post("/use-cases/{use_case_id}/archive", summary="Archive a use case: kept, refusing new events")
async def archive_use_case(who: Manager, use_case_id: str, request: Request) -> JSON:
    await _change(request, who.ws.id, use_case_id, None, INACTIVE)
    return JSON({"success": True})


@router.post("/use-cases/{use_case_id}/unarchive", summary="Unarchive a use case")
async def unarchive_use_case(who: Manager, use_case_id: str, request: Request) -> JSON:
    await _change(request, who.ws.id, use_case_id, None, ACTIVE, must_be_archived=True)
    return JSON({"success": True})
