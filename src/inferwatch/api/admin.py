"""Workspace administration for the `inferwatch workspace` commands while a server runs.

The embedded store admits one process, so the CLI asks the running server instead of opening
the file. These routes take only the server's admin token, which exists only in the data dir's
`server.json` (mode 0600): whoever can read that file could read the database anyway.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import TypeVar

import msgspec
from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from inferwatch import backup, bootstrap, workspaces
from inferwatch.api.common import JSON, read_body, runtime
from inferwatch.errors import InvalidRequest, Unauthorized
from inferwatch.ingest import fields
from inferwatch.store.base import WorkspaceRecord

T = TypeVar("T")

router = APIRouter(prefix="/admin", include_in_schema=False)


class CreateWorkspace(msgspec.Struct):
    slug: str
    api_key: str | None = None


_decode_spec = msgspec.json.Decoder(CreateWorkspace)


class Backup(msgspec.Struct):
    to: str  # an absolute path on the server's machine: a new or empty folder


_decode_backup = msgspec.json.Decoder(Backup)


def _check_admin(request: Request) -> None:
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(token, runtime(request).admin_token):
        raise Unauthorized("admin token required")


def scheduled(request: Request, part: T | None) -> T:
    """For an admin, a part of what runs beside ingest (the alert evaluator, the retention
    sweeper); a server started with --no-evaluator runs neither."""
    _check_admin(request)
    if part is None:
        raise InvalidRequest("this server runs with --no-evaluator")
    return part


def _describe(ws: WorkspaceRecord) -> dict[str, object]:
    return {"slug": ws.slug, "created_at": ws.created_at.isoformat()}


@router.get("/workspaces")
def list_workspaces(request: Request) -> JSON:
    _check_admin(request)
    return JSON({"workspaces": [_describe(ws) for ws in runtime(request).keys.all()]})


@router.post("/workspaces")
async def create_workspace(request: Request) -> JSON:
    _check_admin(request)
    spec = fields.decode(_decode_spec, await read_body(request))
    rt = runtime(request)
    ws, key = await run_in_threadpool(rt.writer.call, lambda s: workspaces.create(s, spec.slug, spec.api_key))
    rt.keys.reload()
    return JSON({**_describe(ws), "api_key": key})


@router.post("/backup")
async def make_backup(request: Request) -> JSON:
    """`inferwatch backup` while this server holds the store: the copy is made in the writer
    thread, between commits, so it is one committed state; images are copied after it."""
    _check_admin(request)
    spec = fields.decode(_decode_backup, await read_body(request))
    target = Path(spec.to)
    if not target.is_absolute():
        raise InvalidRequest("the backup folder must be an absolute path")
    rt = runtime(request)
    try:
        source = backup.store_path(rt.settings)
        backup.check_target(target)
        await run_in_threadpool(rt.writer.call,
                                lambda s: backup.copy_store(s, source, target, rt.schema_version))
        images = await run_in_threadpool(backup.copy_images, rt.settings, target)
    except (backup.BackupError, OSError) as exc:
        raise InvalidRequest(f"backup failed: {exc}") from None
    return JSON({"status": "ok", "to": str(target), "images": images})


@router.post("/workspaces/{slug}/rotate-key")
async def rotate_key(slug: str, request: Request) -> JSON:
    _check_admin(request)
    rt = runtime(request)
    ws, key = await run_in_threadpool(rt.writer.call, lambda s: workspaces.rotate(s, slug))
    rt.keys.reload()
    bootstrap.initial_key(rt.settings, rt.store)  # forgets the first key if it was this one
    return JSON({**_describe(ws), "api_key": key})
