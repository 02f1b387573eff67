"""A workspace's per-model Prometheus series, for Prometheus to scrape with the workspace's key.

Apart from `/metrics` (the process's own figures, open to anyone): these name a workspace's
models, devices and classes, so they are read like the rest of its data, with a key holding
`read` (`Authorization: Bearer KEY` in the scrape configuration, or `?api_key=`).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from inferwatch.api.common import runtime
from inferwatch.auth import Reader

router = APIRouter(prefix="/api/v1/{workspace}")


@router.get("/metrics", summary="The workspace's per-model series in Prometheus' text format (inferences and"
            " predictions by model, device and class; confidence and inference-time histograms by model)")
def workspace_metrics(who: Reader, request: Request) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    series = runtime(request).series
    if series is not None:
        registry.register(series.collector(who.ws.id))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
