"""What a workspace keeps (rows and bytes per table, images) and how long it keeps it."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from inferwatch.api.admin import scheduled
from inferwatch.api.common import JSON, body_schema, read_body, runtime
from inferwatch.auth import Manager, Reader, admin
from inferwatch.ingest.fields import MAX_INT64, decode
from inferwatch.retention import Sweeper
from inferwatch.store.base import RetentionPolicy, Store
from inferwatch.workspaces import audit

router = APIRouter(prefix="/api/v1/{workspace}")
admin_router = APIRouter(prefix="/admin", include_in_schema=False)

Days = Annotated[int, msgspec.Meta(ge=1, le=36500)]


class Policy(msgspec.Struct, forbid_unknown_fields=True):
    """Keep inferences at most `max_days` and/or the newest `max_inferences`; images at most
    `image_max_days`. Null (or left out): no limit of that kind."""

    max_days: Days | None = None
    max_inferences: Annotated[int, msgspec.Meta(ge=1, le=MAX_INT64)] | None = None
    image_max_days: Days | None = None


_POLICY = msgspec.json.Decoder(Policy)


def _describe(policy: RetentionPolicy | None) -> dict[str, int | None]:
    return asdict(policy or RetentionPolicy())


@router.get("/usage", summary="Rows and bytes per table, and image files, of the workspace")
def usage(who: Reader, request: Request) -> JSON:
    """Bytes of a table are its size on disk shared out in proportion to the workspace's rows;
    `image_files` are the uploaded images' own sizes."""
    store = runtime(request).store
    tables = store.usage(who.ws.id)
    return JSON({"tables": tables, "total_bytes": sum(t["bytes"] for t in tables.values()),
                 "retention": _describe(store.retention_policy(who.ws.id))})


@router.get("/retention", summary="The workspace's retention policy")
def get_policy(who: Reader, request: Request) -> JSON:
    return JSON(_describe(runtime(request).store.retention_policy(who.ws.id)))


@router.put("/retention", summary="Set the workspace's retention policy (enforced by the sweeper)",
            openapi_extra=body_schema(Policy, "How long, or how many, inferences and images to keep."))
async def put_policy(who: Manager, request: Request) -> JSON:
    spec = decode(_POLICY, await read_body(request))
    policy = RetentionPolicy(spec.max_days, spec.max_inferences, spec.image_max_days)
    kept = None if policy == RetentionPolicy() else policy
    def put(store: Store) -> None:
        store.set_retention_policy(who.ws.id, kept)
        audit(store, who.ws.id, who.key.name, "retention.set", who.ws.slug, **_describe(kept))

    await run_in_threadpool(runtime(request).writer.call, put)
    return JSON(_describe(kept))


@admin_router.post("/retention/sweep", dependencies=[Depends(admin)])
async def sweep_now(request: Request) -> JSON:
    """Enforces every workspace's policy now."""
    sweeper: Sweeper = scheduled(runtime(request).schedule.sweeper)
    return JSON({"swept": await run_in_threadpool(sweeper.sweep_all)})
