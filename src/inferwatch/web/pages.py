"""The dashboard's pages and sign-in.

Pages are thin server-rendered shells (Jinja2, autoescaped): navigation, the filter forms with
the values from the URL, and empty states. Every figure on them is fetched by the page's script
from the public JSON API with the session cookie, so what a page shows is what a user's own
`curl` gets.
"""

from __future__ import annotations

import hmac
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
import msgspec
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, QueryParams

from inferwatch import __version__
from inferwatch.alerts import service
from inferwatch.alerts.rules import METRICS, RULE_DECODER, Rule
from inferwatch.api.common import runtime
from inferwatch.auth import Form, Scope, StaleForm, csrf_form, page, public, signed_in
from inferwatch.errors import InvalidRequest
from inferwatch.ingest.fields import decode
from inferwatch.query.filters import META_PREFIX, meta_field
from inferwatch.web import session
from inferwatch.workspaces import Principal, audit, hash_key

Viewer = Annotated[Principal | None, Depends(page)]

router = APIRouter(include_in_schema=False)

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=True,  # every template, whatever its name: user data must never become markup
    trim_blocks=True,
    lstrip_blocks=True,
)


def url_with(path: str, params: QueryParams, changes: dict[str, str | None]) -> str:
    """This page's URL with some parameters replaced (None drops one), the rest kept in order."""
    items = [(k, v) for k, v in params.multi_items() if k not in changes]
    items += [(k, v) for k, v in changes.items() if v is not None]
    return path + ("?" + urlencode(items) if items else "")


def url_without(path: str, params: QueryParams, key: str, value: str) -> str:
    """This page's URL without one filter term (and back on the first page)."""
    items = [(k, v) for k, v in params.multi_items() if (k, v) != (key, value) and k != "cursor"]
    return path + ("?" + urlencode(items) if items else "")


# How a chip shows a metadata comparison (`meta.temperature[gt]` reads "meta.temperature > ").
_SYMBOLS = {"eq": "=", "neq": "≠", "gt": ">", "gte": "≥", "lt": "<", "lte": "≤"}
_COMPARED = re.compile(r"^(.+)\[(" + "|".join(_SYMBOLS) + r")\]$", re.DOTALL)


def term_label(key: str, value: str) -> str:
    """A filter term as a person reads it: `line = 3`, `meta.temperature > 150`."""
    found = _COMPARED.match(key)
    return f"{found.group(1)} {_SYMBOLS[found.group(2)]} {value}" if found else f"{key} = {value}"


_env.globals.update(url_with=url_with, url_without=url_without, term_label=term_label)
templates = Jinja2Templates(env=_env)

# Scripts only from this server (no inline script runs, so an injected tag is inert even if some
# escaping were missed); plotly injects its own <style> elements, hence inline styles.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:;"
       " connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
HEADERS = {"Content-Security-Policy": CSP, "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
           "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
PRESETS = ("1h", "24h", "7d", "30d")


def _safe_next(target: str | None) -> str:
    """A local path to go to after signing in; anything else (another host) goes to the overview."""
    # Browsers drop tabs and newlines from URLs ("/\t/evil" becomes "//evil"): no control characters.
    if (target and target.startswith("/") and not target.startswith("//") and "\\" not in target
            and all(ord(ch) >= 0x20 and ch != "\x7f" for ch in target)):
        return target
    return "/overview"


def _initial_key(request: Request, who: Principal) -> str | None:
    """The key for the empty state's examples, when the session signed in with the one `make run`
    printed."""
    try:
        key = runtime(request).settings.initial_key_file.read_text().strip()
    except OSError:
        return None
    return key if key and hmac.compare_digest(hash_key(key), who.key.key_hash) else None


def _render(request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
    # Every page says so while writes are refused (a full disk): ingest is failing, not quiet.
    problem = runtime(request).writer.problem()
    response = templates.TemplateResponse(request, name, {"version": __version__, "write_problem": problem,
                                                          **context},
                                          status_code=status, headers=HEADERS)
    session.keep_csrf(response, request)
    return response


def _page(request: Request, who: Principal | None, name: str, title: str, status: int = 200,
          **context: Any) -> Response:
    """A signed-in page, or a redirect to sign in that comes back here. A viewer (a session of a
    key without `manage`) gets the page without any form that changes something."""
    if who is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/signin?" + urlencode({"next": here}), status_code=303)
    ws = who.ws
    base = str(request.base_url).rstrip("/")
    return _render(request, f"{name}.html", {
        "page": name, "title": title, "slug": ws.slug, "api": f"/api/v1/{ws.slug}",
        "key_name": who.key.name, "can_manage": who.can(Scope.MANAGE),
        "base_url": base, "example_key": _initial_key(request, who),
        "csrf": session.csrf_token(request), "params": request.query_params, "presets": PRESETS,
        "metrics": METRICS, "can_ingest": who.can(Scope.INGEST),
        **context,
    }, status)


# -- sign in and out ---------------------------------------------------------------------------------

def _signin_form(request: Request, error: str | None = None, status: int = 200, target: str | None = None,
                 confirm: tuple[str, str] | None = None) -> Response:
    """The form (again, with what went wrong). A mistyped key is answered 200 like any form shown
    again, so the browser logs no failed request; a forged form gets its 403. `confirm` (slug,
    key) asks before signing in with a key that another site's link carried."""
    return _render(request, "signin.html", {
        "page": "signin", "title": "Sign in", "error": error, "csrf": session.csrf_token(request),
        "next": _safe_next(target or request.query_params.get("next")), "confirm": confirm,
    }, status)


async def _signed_in_redirect(request: Request, who: Principal, target: str) -> Response:
    """Signs in (recorded in the audit trail) and goes on to `target`."""
    await run_in_threadpool(runtime(request).writer.call,
                            lambda store: audit(store, who.ws.id, who.key.name, "signin", who.ws.slug))
    response = RedirectResponse(_safe_next(target), status_code=303, headers={"Referrer-Policy": "no-referrer"})
    session.set_session(response, request, who)
    return response


_NO_READ = "That API key cannot read this workspace (it lacks the `read` scope), so it cannot sign in."


@router.get("/signin", dependencies=[Depends(public)])
async def signin_page(request: Request) -> Response:
    """The form; `?api_key=KEY` (the link `make run` prints) signs in straight away."""
    key = request.query_params.get("api_key")
    if key:
        who = runtime(request).keys.principal(key)
        if who is None:
            return _signin_form(request, "That API key is not valid (rotated?). Paste a current one.")
        if not who.can(Scope.READ):
            return _signin_form(request, _NO_READ)
        if request.headers.get("sec-fetch-site") == "cross-site":
            # A link on another site must not sign this browser in to a workspace of its choosing:
            # the user confirms (a terminal, a bookmark or the address bar are not cross-site).
            return _signin_form(request, confirm=(who.ws.slug, key))
        return await _signed_in_redirect(request, who, request.query_params.get("next") or "/overview")
    if signed_in(request) is not None:
        return RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
    return _signin_form(request)


@router.post("/signin")
async def signin(request: Request, form: Annotated[Form, Depends(csrf_form(None, max_fields=8))]) -> Response:
    key, target = form.data.get("api_key"), form.data.get("next")
    target = target if isinstance(target, str) else None
    who = runtime(request).keys.principal(key.strip()) if isinstance(key, str) and key.strip() else None
    if who is None:
        return _signin_form(request, "That API key is not valid.", target=target)
    if not who.can(Scope.READ):
        return _signin_form(request, _NO_READ, target=target)
    return await _signed_in_redirect(request, who, target or "/overview")


@router.post("/signout", dependencies=[Depends(csrf_form(None, max_fields=4))])
async def signout(request: Request) -> Response:
    response = RedirectResponse("/signin", status_code=303)
    session.clear_session(response, request)
    return response


_EXPIRED = {"/signin": "The form expired; please sign in again.", "/signout": "The form expired; sign out again."}


def stale_form(request: Request, exc: StaleForm) -> Response:
    """A form post without its CSRF token or session: the sign-in form again, with a 403."""
    target = "/alerts" if request.url.path.startswith("/alerts") else None
    message = _EXPIRED.get(request.url.path, "The form expired; sign in and try again.")
    return _signin_form(request, message, 403, target)


# -- pages -------------------------------------------------------------------------------------------

@router.get("/overview")
def overview_page(request: Request, who: Viewer) -> Response:
    return _page(request, who, "overview", "Overview", model_id=None)


@router.get("/models/{model_id:path}")
def model_page(model_id: str, request: Request, who: Viewer) -> Response:
    return _page(request, who, "overview", f"Model {model_id}", model_id=model_id)


@router.get("/inferences")
def inferences_page(request: Request, who: Viewer) -> Response:
    meta = [(k, v) for k, v in request.query_params.multi_items() if k.startswith(META_PREFIX)]
    columns = [field for c in request.query_params.getlist("columns") if (field := meta_field(c)) is not None]
    return _page(request, who, "inferences", "Inferences", meta_filters=meta, columns=columns)


@router.get("/inferences/{inference_id:path}")
def inference_page(inference_id: str, request: Request, who: Viewer) -> Response:
    return _page(request, who, "inference", "Inference", inference_id=inference_id,
                 inference_path=quote(inference_id, safe=""))


@router.get("/devices")
def devices_page(request: Request, who: Viewer) -> Response:
    return _page(request, who, "devices", "Devices")


@router.get("/alerts")
def alerts_page(request: Request, who: Viewer) -> Response:
    return _page(request, who, "alerts", "Alerts", form_error=None, form_values={})


@router.get("/audit")
def audit_page(request: Request, who: Viewer) -> Response:
    """The audit trail; its figures come from `GET /audit`, which needs `manage`."""
    return _page(request, who, "audit", "Audit trail")


# -- alert rules from the dashboard (forms with the session's CSRF token) ----------------------------

def _rule_from_form(form: FormData) -> Rule:
    """The form's fields as a rule, validated as the API validates one (400 with the reason)."""
    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() or None if isinstance(value, str) else None

    def number(name: str) -> float | None:
        value = text(name)
        try:
            return None if value is None else float(value)
        except ValueError:
            raise InvalidRequest(f"{name} must be a number") from None

    spec: dict[str, Any] = {"name": text("name") or "", "metric": text("metric") or "",
                            "condition": text("condition") or "", "warning": number("warning"),
                            "critical": number("critical"), "model_id": text("model_id"),
                            "class": text("class"), "field": text("field"), "channels": []}
    minutes = number("window_min")
    if minutes is not None:
        spec["window_s"] = round(minutes * 60)
    if text("webhook_url"):
        spec["channels"].append({"type": "webhook", "url": text("webhook_url"), "secret": text("webhook_secret")})
    if text("email"):
        spec["channels"].append({"type": "email", "to": [text("email")]})
    return decode(RULE_DECODER, msgspec.json.encode(spec))


ManageForm = Annotated[Form, Depends(csrf_form(Scope.MANAGE))]


@router.post("/alerts/new")
async def create_alert(request: Request, form: ManageForm) -> Response:
    try:
        rule = _rule_from_form(form.data)
        await service.create(runtime(request).writer, form.signed, rule)
    except InvalidRequest as exc:
        detail = exc.detail if isinstance(exc.detail, str) else msgspec.json.encode(exc.detail).decode()
        return _page(request, form.signed, "alerts", "Alerts", form_error=detail, form_values=dict(form.data.items()))
    return RedirectResponse("/alerts", status_code=303)


@router.post("/alerts/{rule_id}/delete")
async def delete_alert(rule_id: str, request: Request, form: Annotated[Form, Depends(csrf_form(Scope.MANAGE, 4))]
                       ) -> Response:
    await service.delete(runtime(request).writer, form.signed, rule_id)
    return RedirectResponse("/alerts", status_code=303)
