"""Liveness and Prometheus metrics; no key needed (neither says anything about the data)."""

from __future__ import annotations

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
    number theirs apart), so it comes with `store`, the backend it counts for."""
    rt = runtime(request)
    store = "duckdb" if rt.settings.resolved_store_url.startswith("duckdb:") else "clickhouse"
    return JSON({"status": "ok", "version": __version__, "store": store, "schema_version": rt.schema_version,
                 "queue_rows": rt.writer.queued_rows})


@router.get("/metrics", summary="Prometheus metrics", dependencies=[Depends(public)])
def prometheus() -> Response:
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
