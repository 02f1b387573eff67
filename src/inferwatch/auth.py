"""Who may call what: a request's key (or dashboard session) becomes a workspace and its scopes,
through FastAPI dependencies that each route declares once, in its signature.

Every route names exactly one of these, and that is the table of who may call what
(`access_table`, walked by the tests; docs/security.md lists it):

- `require(Scope.X)`: a key of the workspace in the path, holding scope X (else 403);
- `require_body(Scope.X)`: the same, for the Roboflow routes whose key may be in the JSON body;
- `require_key(Scope.X)`: a key holding X, whatever its workspace (routes without one in the
  path); `require_key(None)` any valid key; `require_header_key` the same, also read from a
  client's own header;
- `declare(Scope.X)`: the handler checks X itself, on each of several keys (a server report);
- `page`: a dashboard page (a session of a `read` key, else the sign-in page);
- `csrf_form(Scope.X)`: a dashboard form post: its CSRF token, and a session holding X;
- `public`, `admin`: no key; the server's admin token (the CLI while a server runs).

A key is looked up in memory (`workspaces.KeyRing`): a scope check costs no database read. The
dependencies are coroutines, so FastAPI runs them on the event loop, not through a thread hop per
request. Nothing here imports `web/`; the dashboard imports this.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.datastructures import FormData
from starlette.routing import BaseRoute

from inferwatch.api.common import limit_rate, read_body, request_key, runtime
from inferwatch.errors import ApiError, Forbidden, Unauthorized
from inferwatch.query.filters import Filters, default_range, parse_filters
from inferwatch.sessions import COOKIE, CSRF_COOKIE
from inferwatch.workspaces import Principal

SAFE_METHODS = ("GET", "HEAD")
F = TypeVar("F", bound=Callable[..., Any])


class Scope(StrEnum):
    INGEST = "ingest"  # send inferences, metadata, images, reports; an edge device's key
    READ = "read"  # every query, export and image; signing in to the dashboard
    MANAGE = "manage"  # alert rules, retention, ground truth, keys, the audit trail


@dataclass(frozen=True, slots=True)
class Access:
    """A route's declaration: how a caller proves who it is, and the scope it needs."""

    kind: str  # key, page, form, public, admin
    scope: Scope | None = None

    def __str__(self) -> str:
        return self.kind if self.scope is None else f"{self.kind}:{self.scope}"


def _declares(access: Access) -> Callable[[F], F]:
    def mark(dependency: F) -> F:
        dependency.access = access  # type: ignore[attr-defined]
        return dependency
    return mark


class StaleForm(ApiError):
    """A dashboard form without a valid CSRF token or session: shown the sign-in form again."""

    status = 403
    error = "Forbidden"


# -- who is calling ------------------------------------------------------------------------------

def signed_in(request: Request) -> Principal | None:
    """The principal of the request's dashboard session cookie, if any."""
    rt = getattr(request.app.state, "runtime", None)
    if rt is None:
        return None
    found: Principal | None = rt.sessions.principal(request.cookies.get(COOKIE))
    return found


def principal(request: Request, body_key: str | None = None) -> Principal:
    """The key's principal (a session's for a read without a key), else 401. Spends one of the
    key's rate-limit tokens and notes its use in memory."""
    key = request_key(request, body_key)
    if not key:
        # The dashboard's pages read the API with their session cookie (never to write).
        who = signed_in(request) if request.method in SAFE_METHODS else None
        if who is not None:
            return who
        raise Unauthorized("missing API key: send `Authorization: Bearer KEY` or `?api_key=KEY`")
    keys = runtime(request).keys
    who = keys.lookup(key)
    if who is None:
        raise Unauthorized("invalid API key")
    if who.key.revoked_at is not None:
        raise Unauthorized("this API key was revoked")
    if who.expired():
        raise Unauthorized("this API key has expired")
    limit_rate(request, who.key.key_hash)
    keys.note_use(who)
    return who


def check(who: Principal, scope: Scope | None) -> Principal:
    if scope is not None and not who.can(scope):
        raise Forbidden(f"this API key (`{who.key.name}`) lacks the `{scope}` scope")
    return who


def _in_workspace(who: Principal, slug: str) -> Principal:
    if who.ws.slug != slug:
        raise Forbidden("this API key does not belong to that workspace")
    return who


# -- the declarations --------------------------------------------------------------------------

def require(scope: Scope) -> Callable[[str, Request], Awaitable[Principal]]:
    @_declares(Access("key", scope))
    async def dependency(workspace: str, request: Request) -> Principal:
        return check(_in_workspace(principal(request), workspace), scope)
    return dependency


def require_key(scope: Scope | None) -> Callable[[Request], Awaitable[Principal]]:
    @_declares(Access("key", scope))
    async def dependency(request: Request) -> Principal:
        return check(principal(request), scope)
    return dependency


def require_header_key(scope: Scope, header: str) -> Callable[[Request], Awaitable[Principal]]:
    """`require_key`, for a client that sends its key in a header of its own (the edge event
    store's `X-API-Key`); Bearer and `?api_key=` are still read first."""
    @_declares(Access("key", scope))
    async def dependency(request: Request) -> Principal:
        return check(principal(request, request.headers.get(header)), scope)
    return dependency


@dataclass(frozen=True, slots=True)
class Authorized:
    who: Principal
    body: bytes


def require_body(scope: Scope, body_key: Callable[[bytes], str | None]
                 ) -> Callable[[str, Request], Awaitable[Authorized]]:
    """A header or query key is checked before the body is read (and inflated); a key that can
    only be in the body is looked for there (`body_key`), even in a malformed one."""
    @_declares(Access("key", scope))
    async def dependency(workspace: str, request: Request) -> Authorized:
        if request_key(request) is not None:
            who = check(_in_workspace(principal(request), workspace), scope)
            return Authorized(who, await read_body(request))
        body = await read_body(request)
        return Authorized(check(_in_workspace(principal(request, body_key(body)), workspace), scope), body)
    return dependency


def declare(scope: Scope | None) -> Callable[[], Awaitable[None]]:
    """For a handler that checks `scope` itself, on each key it finds (`check`); None: any
    valid key."""
    @_declares(Access("key", scope))
    async def dependency() -> None:
        return None
    return dependency


@_declares(Access("public"))
async def public() -> None:
    """No key: the route says nothing about any workspace's data."""


@_declares(Access("admin"))
async def admin(request: Request) -> None:
    """The server's per-start admin token, which only `server.json` in the data dir holds."""
    header = request.headers.get("authorization", "")
    token = header.removeprefix("Bearer ").strip()
    if not token or not hmac.compare_digest(token, runtime(request).admin_token):
        raise Unauthorized("admin token required")


@_declares(Access("page", Scope.READ))
async def page(request: Request) -> Principal | None:
    """A page's viewer; None sends the browser to sign in (the page does the redirect)."""
    return signed_in(request)


def csrf_ok(request: Request, submitted: object) -> bool:
    """A form post is ours: it repeats the CSRF cookie, and comes from this origin if it says."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not isinstance(submitted, str) or not hmac.compare_digest(cookie, submitted):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin not in (f"http://{host}", f"https://{host}"):
            return False
    return True


@dataclass(frozen=True, slots=True)
class Form:
    who: Principal | None  # None for the sign-in and sign-out forms
    data: FormData

    @property
    def signed(self) -> Principal:
        """The session's principal, for a form that asked a scope (which makes one certain)."""
        if self.who is None:
            raise StaleForm("not signed in")
        return self.who


def csrf_form(scope: Scope | None, max_fields: int = 16) -> Callable[[Request], Awaitable[Form]]:
    """A dashboard form post: a valid CSRF token (else `StaleForm`, the sign-in form again) and,
    with a scope, a session holding it (a viewer's session is refused with 403)."""
    @_declares(Access("form", scope))
    async def dependency(request: Request) -> Form:
        data = await request.form(max_files=0, max_fields=max_fields)
        if not csrf_ok(request, data.get("csrf")):
            raise StaleForm("the form expired")
        if scope is None:
            return Form(None, data)
        who = signed_in(request)
        if who is None:
            raise StaleForm("not signed in")
        return Form(check(who, scope), data)
    return dependency


# -- the time window ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Window:
    """A request's filters with both ends of the time window set (the last 24 h by default)."""

    filters: Filters
    start: datetime
    end: datetime


def window(*extra_keys: str, besides: tuple[str, ...] = ()) -> Callable[[Request], Awaitable[Window]]:
    """The dependency of a route that reads a window: `extra_keys` are its own parameters,
    `besides` parameters it reads that are not filters (left out before the strict parse)."""
    async def dependency(request: Request) -> Window:
        params = [(k, v) for k, v in request.query_params.multi_items() if k not in besides]
        filters = default_range(parse_filters(params, extra_keys=extra_keys), datetime.now(UTC))
        start, end = filters.start, filters.end
        if start is None or end is None:  # default_range sets both; this tells mypy so
            raise AssertionError("default_range left the window open")
        return Window(filters, start, end)
    return dependency


# -- the table ---------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class RouteAccess:
    """An API route and what it declares (exactly one `Access`, on a well-made route)."""

    methods: frozenset[str]
    path: str
    declared: tuple[Access, ...]


def _declared(dependant: Dependant | None) -> tuple[Access, ...]:
    found: list[Access] = []
    pending = list(dependant.dependencies) if dependant is not None else []
    while pending:
        dep = pending.pop()
        access = getattr(dep.call, "access", None)
        if isinstance(access, Access):
            found.append(access)
        pending.extend(dep.dependencies)
    return tuple(found)


def access_table(routes: Iterable[BaseRoute]) -> Iterator[RouteAccess]:
    """Every API route of an app (`app.routes`), its router's prefix and dependencies included."""
    for route in routes:
        contexts = getattr(route, "effective_route_contexts", None)  # an included router
        if contexts is not None:
            for context in contexts():
                yield RouteAccess(frozenset(context.methods), context.path, _declared(context.dependant))
        elif isinstance(route, APIRoute):
            yield RouteAccess(frozenset(route.methods or ()), route.path, _declared(route.dependant))


# The usual declarations, as handler parameter types.
Ingester = Annotated[Principal, Depends(require(Scope.INGEST))]
Reader = Annotated[Principal, Depends(require(Scope.READ))]
Manager = Annotated[Principal, Depends(require(Scope.MANAGE))]
