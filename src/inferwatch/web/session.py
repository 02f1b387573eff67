"""The dashboard's session cookie and the CSRF token of its forms.

The cookie carries a session token (`inferwatch.sessions`). It is HttpOnly (page scripts never
see it) and SameSite=Strict (another site cannot make the browser send it), and the JSON API
accepts it only for reads (GET and HEAD): anything that writes through the API still needs a key.

Forms that change state (sign in and out, alert rules) carry a CSRF token: a random value in its
own Strict cookie that the form must repeat (double submit), plus an Origin check when the
browser sends one.
"""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from inferwatch.api.common import runtime
from inferwatch.sessions import COOKIE, CSRF_COOKIE, LIFETIME_S
from inferwatch.workspaces import Principal


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, who: Principal) -> None:
    response.set_cookie(COOKIE, runtime(request).sessions.token(who), max_age=LIFETIME_S, path="/", httponly=True,
                        samesite="strict", secure=_secure(request))


def clear_session(response: Response, request: Request) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=_secure(request))


def csrf_token(request: Request) -> str:
    """The request's CSRF token (its cookie's), or a new one that `keep_csrf` must then set."""
    token = request.cookies.get(CSRF_COOKIE)
    if token and 20 <= len(token) <= 64 and token.isascii():
        return token
    token = getattr(request.state, "new_csrf", None) or secrets.token_urlsafe(24)
    request.state.new_csrf = token
    return token


def keep_csrf(response: Response, request: Request) -> None:
    token = getattr(request.state, "new_csrf", None)
    if token:
        response.set_cookie(CSRF_COOKIE, token, path="/", httponly=True, samesite="strict", secure=_secure(request))
