"""The app factory: routes, error rendering, and the lifespan that runs the writer."""

from __future__ import annotations

import gc
import logging
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inferwatch import __version__, bootstrap, metrics
from inferwatch.api import (
    admin,
    alerts,
    drift,
    export,
    health,
    images,
    inferences,
    metadata,
    model_metrics,
    overview,
    performance,
    roboflow,
    stats,
    usage,
)
from inferwatch.api.common import JSON, SCHEMA_TYPES, Runtime, schema_ref_placeholder
from inferwatch.config import Settings
from inferwatch.errors import ApiError
from inferwatch.image_store import open_image_store
from inferwatch.ingest.writer import Writer
from inferwatch.model_metrics import ModelSeries
from inferwatch.proxy.app import Proxy
from inferwatch.proxy.serve import mount as mount_proxy
from inferwatch.ratelimit import RateLimiter
from inferwatch.schedule import Schedule
from inferwatch.store.base import Store
from inferwatch.web import assets, pages, session
from inferwatch.workspaces import KeyRing

log = logging.getLogger(__name__)


class RequestMetrics:
    """Counts answers by route template (never the raw path: ids would explode the labels)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.REQUESTS.labels(scope["method"], path, str(status)).inc()


def create_app(settings: Settings, store: Store, schema_version: int) -> FastAPI:
    admin_token = secrets.token_urlsafe(32)
    proxy: Proxy | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Every DuckDB call gives up the GIL and takes it back a few times; at the default 5 ms
        # switch interval each take waits behind the event loop's decoding, which starved the
        # writer (a 1 ms commit took 20 ms under load). Objects alive after start-up never
        # become garbage: freezing them keeps every collection short.
        sys.setswitchinterval(0.0002)
        gc.freeze()
        series = ModelSeries(settings.metrics_max_label_values)
        writer = Writer(store, settings.queue_max_rows, series)
        writer.start()
        app.state.runtime = Runtime(settings, store, writer, KeyRing(store), admin_token, schema_version,
                                    open_image_store(settings.image_store, settings.data_dir),
                                    RateLimiter(settings.rate_limit, settings.rate_limit_burst)
                                    if settings.rate_limit > 0 else None, series)
        app.state.sessions = session.Sessions(settings.data_dir / "session-secret", app.state.runtime.keys)
        app.state.schedule = Schedule.start(settings, store, writer, app.state.runtime.images)
        bootstrap.write_server_file(settings, admin_token)
        try:
            yield
        finally:
            bootstrap.remove_server_file(settings, admin_token)
            if proxy is not None:  # before the writer stops, so its last records are committed
                await proxy.aclose()
            app.state.schedule.stop()
            writer.stop()

    # The API reference's assets are served by inferwatch itself: no CDN in an air-gapped plant.
    app = FastAPIOffline(
        redoc_url=None,
        title="inferwatch",
        version=__version__,
        description="Model monitoring for computer-vision inference; Roboflow Model Monitoring compatible.",
        lifespan=lifespan,
        openapi_url="/openapi.json",
    )
    if settings.proxy_upstream:  # before every route: `/proxy/...` belongs to the inference server
        proxy = mount_proxy(app, settings.proxy_upstream, settings.proxy_workspace)
    # Dashboard pages first: `/inferences/{id}` must not be taken for Roboflow's `/{workspace}/...`.
    app.include_router(pages.router)
    app.include_router(assets.router, prefix="/static")
    app.mount("/static", assets.static_files(), name="static")
    for module in (roboflow, images, inferences, stats, metadata, overview, performance, drift, alerts, usage,
                   export, model_metrics, health, admin):
        app.include_router(module.router)
    app.include_router(alerts.admin_router)
    app.include_router(usage.admin_router)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSON:
        return JSON(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RecursionError)
    async def too_deep(request: Request, exc: RecursionError) -> JSON:
        # msgspec raises RecursionError, not a DecodeError, on JSON nested past its depth limit
        # inside free-form fields (a result's extra keys, form metadata): the input, not a bug.
        return JSON({"error": "Invalid request", "detail": "JSON nested too deeply"}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSON:
        return JSON({"error": "Invalid request", "detail": str(exc.errors())}, status_code=400)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> JSON:
        return JSON({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSON:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSON({"error": "Internal error"}, status_code=500)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description,
                               routes=app.routes)
            refs, components = msgspec.json.schema_components(
                SCHEMA_TYPES, ref_template="#/components/schemas/{name}"
            )
            spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
            chosen = {schema_ref_placeholder(t): ref["$ref"] for t, ref in zip(SCHEMA_TYPES, refs, strict=True)}
            for operation in (op for path in spec.get("paths", {}).values() for op in path.values()):
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    schema = media.get("schema", {})
                    if schema.get("$ref") in chosen:
                        media["schema"] = {"$ref": chosen[schema["$ref"]]}
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestMetrics)
    return app
