"""Liveness and Prometheus metrics; no key needed (neither says anything about the data)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from inferwatch import __version__, metrics
from inferwatch.api.common import JSON, runtime
from inferwatch.auth import public

router = APIRouter()


@router.get("/healthz", summary="Liveness", dependencies=[Depends(public)])
def healthz(request: Request) -> JSON:
    """`schema_version` is a migration number of one backend's own list (DuckDB and ClickHouse
    number theirs apart), so it comes with `store`, the backend it counts for.

    200 while the process serves: `status` is `degraded` while writes are refused (a full data
    volume, a store being reopened), with `problem` saying why; reads work then. `disk` is the
    data volume's free space and floor."""
    rt = runtime(request)
    problem = rt.writer.problem()
    store = "duckdb" if rt.settings.resolved_store_url.startswith("duckdb:") else "clickhouse"
    answer: dict[str, Any] = {"status": "degraded" if problem else "ok", "version": __version__, "store": store,
                              "schema_version": rt.schema_version, "queue_rows": rt.writer.queued_rows}
    if problem:
        answer["problem"] = problem
    if rt.writer.disk is not None:
        space = rt.writer.disk.space()
        answer["disk"] = {"volume": space.volume, "free_bytes": space.free, "total_bytes": space.total,
                          "floor_bytes": space.floor}
    return JSON(answer)


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(public)])
def prometheus(request: Request) -> Response:
    rt = runtime(request)
    if rt.writer.disk is not None:
        space = rt.writer.disk.space()
        metrics.DISK_FREE_BYTES.set(space.free)
        metrics.DISK_FLOOR_BYTES.set(space.floor)
    metrics.WRITES_REFUSED.set(1 if rt.writer.problem() else 0)
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
