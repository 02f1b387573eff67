"""The app factory: routes, error rendering, and the lifespan that runs the writer."""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import msgspec
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inferwatch import __version__, metrics
from inferwatch.api import (
    admin,
    alerts,
    drift,
    event_store,
    export,
    health,
    images,
    inferences,
    keys,
    metadata,
    model_metrics,
    overview,
    performance,
    roboflow,
    stats,
    usage,
    use_cases,
    vision_event_bundle,
    vision_events,
)
from inferwatch.api.common import JSON, SCHEMA_REF_PREFIX, Runtime
from inferwatch.auth import StaleForm, public
from inferwatch.config import Settings
from inferwatch.diskspace import DiskGuard, Floor
from inferwatch.errors import ApiError, StoreUnavailable
from inferwatch.image_store import open_image_store
from inferwatch.ingest.writer import Writer
from inferwatch.model_metrics import ModelSeries
from inferwatch.periodic import Periodic
from inferwatch.proxy.app import Proxy
from inferwatch.proxy.serve import mount as mount_proxy
from inferwatch.ratelimit import RateLimiter
from inferwatch.schedule import Schedule
from inferwatch.sessions import Sessions
from inferwatch.store.base import Store
from inferwatch.web import assets, pages, vision
from inferwatch.workspaces import KeyRing

log = logging.getLogger(__name__)
KEY_USE_FLUSH_S = 60.0


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


class StorageFailures:
    """Answers 503 (retry shortly) to a request whose read or write met a failing store: a disk
    failing, or the writer reopening the file under a read. Done here, not in a handler for
    `Exception`: Starlette raises the exception again after that handler's answer, and the
    server then closes the connection, so a client reusing it met a reset instead of the 503."""

    def __init__(self, app: ASGIApp, store: Store) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception as exc:
            if started or not self.store.storage_failed(exc):
                raise
            log.warning("%s %s: the store failed: %s", scope["method"], scope["path"], exc)
            await error_response(StoreUnavailable("the store could not be read or written; retry shortly"))(
                scope, receive, send)


def error_response(exc: ApiError) -> JSON:
    """The one rendering of an API error: `{"error", "detail"}` with its status and headers."""
    return JSON(exc.body(), status_code=exc.status, headers=exc.headers)


def create_app(settings: Settings, store: Store, schema_version: int, admin_token: str) -> FastAPI:
    """The whole service on an open store, changing nothing outside itself: what concerns the
    process (the interpreter's tuning, the `server.json` the CLI finds it by) is `inferwatch
    serve`'s, so tests can run the app in-process."""
    proxy: Proxy | None = None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        series = ModelSeries(settings.metrics_max_label_values)
        disk = DiskGuard(settings.data_dir, Floor.parse(settings.min_free_space),
                         retry_after_s=settings.disk_retry_after_s)
        writer = Writer(store, settings.queue_max_rows, settings.commit_timeout_s, series, disk)
        writer.start()
        keys = KeyRing(store)
        images = open_image_store(settings.image_store, settings.data_dir)
        app.state.runtime = Runtime(
            settings, store, writer, keys, admin_token, schema_version, images,
            Sessions(settings.data_dir / "session-secret", keys),
            Schedule.start(settings, store, writer, images),
            RateLimiter(settings.rate_limit, settings.rate_limit_burst) if settings.rate_limit > 0 else None, series)
        # Keys' last use, noted in memory per request, written (and expiries noted) once a minute.
        key_use = Periodic("key-use", KEY_USE_FLUSH_S, lambda: writer.call(keys.flush))
        key_use.start()
        try:
            yield
        finally:
            if proxy is not None:  # before the writer stops, so its last records are committed
                await proxy.aclose()
            app.state.runtime.schedule.stop()
            key_use.stop()
            try:
                writer.call(keys.flush)
            except Exception:  # the last uses are a courtesy; shutting down must not fail on them
                log.warning("writing the keys' last use failed", exc_info=True)
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
    # The Vision Events API first: its prefixes hold no other route, and batch create is the
    # busiest path, which then skips matching every page's pattern before its own.
    for module in (vision_events, vision_event_bundle, event_store, use_cases):
        app.include_router(module.router)
    # Dashboard pages next: `/inferences/{id}` must not be taken for Roboflow's `/{workspace}/...`.
    app.include_router(pages.router)
    app.include_router(vision.router)
    app.include_router(assets.router, prefix="/static")
    app.add_api_route("/favicon.ico", assets.favicon, include_in_schema=False, dependencies=[Depends(public)])
    app.mount("/static", assets.static_files(), name="static")
    for module in (roboflow, images, inferences, stats, metadata, overview, performance, drift, alerts, usage,
                   export, model_metrics, health, admin, keys):
        app.include_router(module.router)
    app.include_router(alerts.admin_router)
    app.include_router(usage.admin_router)
    app.include_router(keys.admin_router)
    app.include_router(roboflow.workspace_router)  # last: `/{workspace}` must take no other route's path
    app.add_exception_handler(StaleForm, pages.stale_form)  # type: ignore[arg-type]

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> JSON:
        return error_response(exc)

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
            bodies = [media["schema"] for path in spec.get("paths", {}).values() for op in path.values()
                      for media in op.get("requestBody", {}).get("content", {}).values()
                      if media.get("schema", {}).get("$ref", "").startswith(SCHEMA_REF_PREFIX)]
            types = list(dict.fromkeys(_struct_named(body["$ref"]) for body in bodies))
            refs, components = msgspec.json.schema_components(types, ref_template="#/components/schemas/{name}")
            spec.setdefault("components", {}).setdefault("schemas", {}).update(components)
            chosen = {t: ref["$ref"] for t, ref in zip(types, refs, strict=True)}
            for body in bodies:
                body["$ref"] = chosen[_struct_named(body["$ref"])]
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(StorageFailures, store=store)
    app.add_middleware(RequestMetrics)  # outermost: it counts the 503s of StorageFailures too
    return app


def _struct_named(ref: str) -> type:
    """The msgspec Struct behind a body's stand-in `$ref` (see `api.common.body_schema`)."""
    module, _, qualname = ref.removeprefix(SCHEMA_REF_PREFIX).partition(":")
    found: Any = importlib.import_module(module)
    for part in qualname.split("."):
        found = getattr(found, part)
    struct: type = found
    return struct
