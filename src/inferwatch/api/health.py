"""Liveness and Prometheus metrics; no key needed (neither says anything about the data)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from inferwatch import __version__, metrics
from inferwatch.api.common import JSON, runtime

router = APIRouter()


@router.get("/healthz", summary="Liveness")
def healthz(request: Request) -> JSON:
    rt = runtime(request)
    return JSON({"status": "ok", "version": __version__, "schema_version": rt.schema_version,
                 "queue_rows": rt.writer.queued_rows})


@router.get("/metrics", summary="Prometheus metrics")
def prometheus() -> Response:
    return Response(generate_latest(metrics.REGISTRY), media_type=CONTENT_TYPE_LATEST)
