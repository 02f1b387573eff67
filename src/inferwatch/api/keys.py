"""A workspace's API keys and its audit trail (`manage`), and the same key commands for the CLI
while a server runs (admin token).

A key's secret is in the answer that creates it and nowhere else, ever. Revoking, expiring and
creating a key take effect on this server at once (its key ring is reloaded), on other servers
of a shared store within seconds.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import msgspec
from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from inferwatch import bootstrap, workspaces
from inferwatch.api.common import JSON, body_schema, read_body, runtime, whole_number
from inferwatch.auth import Manager, admin
from inferwatch.errors import InvalidRequest
from inferwatch.ingest.fields import decode
from inferwatch.query.filters import parse_time
from inferwatch.store.base import Store, WorkspaceRecord
from inferwatch.workspaces import CLI_ACTOR, describe_key

router = APIRouter(prefix="/api/v1/{workspace}")
admin_router = APIRouter(prefix="/admin/workspaces/{slug}", include_in_schema=False, dependencies=[Depends(admin)])
T = TypeVar("T")

DEFAULT_AUDIT = 100
MAX_AUDIT = 1000


class NewKey(msgspec.Struct, forbid_unknown_fields=True):
    """A key's name (unique among the workspace's keys in use), its scopes (`ingest`, `read`,
    `manage`) and, optionally, when it expires (ISO 8601 or unix seconds)."""

    name: str
    scopes: list[str]
    expires_at: str | None = None
    api_key: str | None = None  # a key to take (e.g. a Roboflow key); else one is made


class KeyChange(msgspec.Struct, forbid_unknown_fields=True):
    """A new expiry for a key (ISO 8601 or unix seconds), or null for none."""

    expires_at: str | None


_NEW = msgspec.json.Decoder(NewKey)
_CHANGE = msgspec.json.Decoder(KeyChange)


def _expiry(text: str | None) -> datetime | None:
    return None if text is None else parse_time(text, "expires_at").replace(tzinfo=None)


async def _write(request: Request, fn: Callable[[Store], T]) -> T:
    """A key change in the writer, then the key ring reloaded so it holds on the next request."""
    rt = runtime(request)
    result = await run_in_threadpool(rt.writer.call, fn)
    rt.keys.reload()
    return result


async def _create(request: Request, ws: WorkspaceRecord, actor: str) -> dict[str, Any]:
    spec = decode(_NEW, await read_body(request))
    expires = _expiry(spec.expires_at)
    record, key = await _write(request, lambda s: workspaces.add_key(s, ws.id, spec.name, spec.scopes, expires,
                                                                      actor, spec.api_key))
    return {**describe_key(record), "api_key": key}


async def _change(request: Request, ws: WorkspaceRecord, key: str, actor: str) -> dict[str, Any]:
    spec = decode(_CHANGE, await read_body(request))
    expires = _expiry(spec.expires_at)
    record = await _write(request, lambda s: workspaces.set_expiry(s, ws.id, key, expires, actor))
    return describe_key(record)


async def _revoke(request: Request, ws: WorkspaceRecord, key: str, actor: str) -> dict[str, Any]:
    record = await _write(request, lambda s: workspaces.revoke_key(s, ws.id, key, actor))
    rt = runtime(request)
    await run_in_threadpool(bootstrap.initial_key, rt.settings, rt.store)  # forgets the first key if it was this
    return describe_key(record)


def _list(request: Request, ws: WorkspaceRecord) -> dict[str, Any]:
    return {"keys": [describe_key(k) for k in runtime(request).keys.keys(ws.id)]}


# -- the API (manage) ----------------------------------------------------------------------------

@router.get("/keys", summary="The workspace's API keys: name, scopes, created, last used, expiry (never the key)")
def list_keys(who: Manager, request: Request) -> JSON:
    return JSON(_list(request, who.ws))


@router.post("/keys", summary="Create a named key with scopes; the answer is the only time the key is shown",
             status_code=201, openapi_extra=body_schema(NewKey, "The key's name, scopes and expiry."))
async def create_key(who: Manager, request: Request) -> JSON:
    return JSON(await _create(request, who.ws, who.key.name), status_code=201)


@router.patch("/keys/{key}", summary="Set or clear a key's expiry (the key by id or name)",
              openapi_extra=body_schema(KeyChange, "The new expiry, or null."))
async def change_key(who: Manager, key: str, request: Request) -> JSON:
    return JSON(await _change(request, who.ws, key, who.key.name))


@router.delete("/keys/{key}", summary="Revoke a key (by id or name): refused from the next request on")
async def revoke_key(who: Manager, key: str, request: Request) -> JSON:
    return JSON(await _revoke(request, who.ws, key, who.key.name))


@router.get("/audit", summary="The audit trail: every manage action and key event, newest first (`limit=`)")
def audit_trail(who: Manager, request: Request) -> JSON:
    params = request.query_params
    unknown = set(params) - {"limit", "api_key"}
    if unknown:
        raise InvalidRequest(f"unknown query parameter {sorted(unknown)[0]!r}")
    limit = whole_number(params.get("limit"), "limit", DEFAULT_AUDIT, MAX_AUDIT)
    return JSON({"events": [
        {"at": r.at.isoformat() + "Z", "actor": r.actor, "action": r.action, "target": r.target,
         "detail": msgspec.json.decode(r.detail)}
        for r in runtime(request).store.audit(who.ws.id, limit)]})


# -- the CLI while a server runs (admin token) ---------------------------------------------------

def _workspace(request: Request, slug: str) -> WorkspaceRecord:
    ws = runtime(request).keys.by_slug(slug)
    if ws is None:
        raise InvalidRequest(f"no workspace {slug!r}")
    return ws


@admin_router.get("/keys")
def admin_list_keys(slug: str, request: Request) -> JSON:
    return JSON(_list(request, _workspace(request, slug)))


@admin_router.post("/keys")
async def admin_create_key(slug: str, request: Request) -> JSON:
    return JSON(await _create(request, _workspace(request, slug), CLI_ACTOR))


@admin_router.patch("/keys/{key}")
async def admin_change_key(slug: str, key: str, request: Request) -> JSON:
    return JSON(await _change(request, _workspace(request, slug), key, CLI_ACTOR))


@admin_router.delete("/keys/{key}")
async def admin_revoke_key(slug: str, key: str, request: Request) -> JSON:
    return JSON(await _revoke(request, _workspace(request, slug), key, CLI_ACTOR))
