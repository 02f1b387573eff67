"""Workspace administration for the `inferwatch workspace` commands while a server runs.

The embedded store admits one process, so the CLI asks the running server instead of opening
the file. These routes take only the server's admin token, which exists only in the data dir's
`server.json` (mode 0600): whoever can read that file could read the database anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from inferwatch import backup, bootstrap, workspaces
from inferwatch.api.common import JSON, read_body, runtime
from inferwatch.auth import admin
from inferwatch.errors import InvalidRequest
from inferwatch.ingest import fields
from inferwatch.store.base import WorkspaceRecord

T = TypeVar("T")

router = APIRouter(prefix="/admin", include_in_schema=False, dependencies=[Depends(admin)])


class CreateWorkspace(msgspec.Struct):
    slug: str
    api_key: str | None = None
    scopes: list[str] = msgspec.field(default_factory=lambda: list(workspaces.SCOPES))


_decode_spec = msgspec.json.Decoder(CreateWorkspace)


class Backup(msgspec.Struct):
    to: str  # an absolute path on the server's machine: a new or empty folder


_decode_backup = msgspec.json.Decoder(Backup)


def scheduled(part: T | None) -> T:
    """A part of what runs beside ingest (the alert evaluator, the retention sweeper); a server
    started with --no-evaluator runs neither."""
    if part is None:
        raise InvalidRequest("this server runs with --no-evaluator")
    return part


def _describe(ws: WorkspaceRecord) -> dict[str, object]:
    return {"slug": ws.slug, "created_at": ws.created_at.isoformat()}


@router.get("/workspaces")
def list_workspaces(request: Request) -> JSON:
    return JSON({"workspaces": [_describe(ws) for ws in runtime(request).keys.all()]})


@router.post("/workspaces")
async def create_workspace(request: Request) -> JSON:
    spec = fields.decode(_decode_spec, await read_body(request))
    rt = runtime(request)
    ws, key = await run_in_threadpool(
        rt.writer.call, lambda s: workspaces.create(s, spec.slug, spec.api_key, tuple(spec.scopes)))
    rt.keys.reload()
    return JSON({**_describe(ws), "api_key": key})


@router.post("/backup")
async def make_backup(request: Request) -> JSON:
    """`inferwatch backup` while this server holds the store: the copy is made in the writer
    thread, between commits, so it is one committed state; images are copied after it."""
    spec = fields.decode(_decode_backup, await read_body(request))
    target = Path(spec.to)
    if not target.is_absolute():
        raise InvalidRequest("the backup folder must be an absolute path")
    rt = runtime(request)
    try:
        source = backup.store_path(rt.settings)
        backup.check_target(target)
        await run_in_threadpool(rt.writer.maintain,
                                lambda s: backup.copy_store(s, source, target, rt.schema_version))
        images = await run_in_threadpool(backup.copy_images, rt.settings, target)
    except (backup.BackupError, OSError) as exc:
        raise InvalidRequest(f"backup failed: {exc}") from None
    return JSON({"status": "ok", "to": str(target), "images": images})


@router.post("/workspaces/{slug}/rotate-key")
async def rotate_key(slug: str, request: Request) -> JSON:
    rt = runtime(request)
    ws, key = await run_in_threadpool(rt.writer.call, lambda s: workspaces.rotate(s, slug))
    rt.keys.reload()
    bootstrap.initial_key(rt.settings, rt.store)  # forgets the first key if it was this one
    return JSON({**_describe(ws), "api_key": key})
