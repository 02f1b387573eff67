"""Dashboard sessions: a signed cookie standing for "signed in to workspace N with its current key".

The cookie never holds the API key. It holds the workspace id and an expiry, signed (HMAC-SHA256)
with a secret kept in the data dir together with the workspace's current key hash, so rotating a
key signs out every browser that signed in with the old one, and a restart keeps people signed
in. It is HttpOnly (page scripts never see it) and SameSite=Strict (another site cannot make the
browser send it), and the JSON API accepts it only for reads (GET and HEAD): anything that writes
still needs the key itself.

Forms that change state (sign in, sign out) carry a CSRF token: a random value in its own
Strict cookie that the form must repeat (double submit), plus an Origin check when the browser
sends one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from inferwatch.store.base import WorkspaceRecord
from inferwatch.workspaces import KeyRing

COOKIE = "iw_session"
CSRF_COOKIE = "iw_csrf"
LIFETIME_S = 30 * 24 * 3600
SAFE_METHODS = ("GET", "HEAD")


def _load_secret(path: Path) -> bytes:
    """The signing secret, made on first use (mode 0600) and kept across restarts."""
    try:
        data = path.read_bytes()
        if len(data) >= 32:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(secrets.token_bytes(32))
    try:
        os.link(tmp, path)  # never replaces a secret another process just made
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


class Sessions:
    """Issues and checks session cookies against the server's current workspaces."""

    def __init__(self, secret_file: Path, keys: KeyRing) -> None:
        self._secret = _load_secret(secret_file)
        self._keys = keys

    def _sign(self, ws: WorkspaceRecord, expires: int) -> str:
        message = f"{ws.id}.{expires}.{ws.key_hash}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def token(self, ws: WorkspaceRecord, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + LIFETIME_S
        return f"{ws.id}.{expires}.{self._sign(ws, expires)}"

    def workspace(self, token: str | None, now: float | None = None) -> WorkspaceRecord | None:
        """The workspace a cookie signs in to, None if it is forged, expired or its key rotated."""
        if not token or token.count(".") != 2:
            return None
        ws_text, expires_text, signature = token.split(".")
        if not (ws_text.isascii() and ws_text.isdigit() and expires_text.isascii() and expires_text.isdigit()):
            return None
        if int(expires_text) < (now if now is not None else time.time()):
            return None
        ws = next((w for w in self._keys.all() if w.id == int(ws_text)), None)
        if ws is None or not hmac.compare_digest(signature, self._sign(ws, int(expires_text))):
            return None
        return ws


def sessions(request: Request) -> Sessions:
    found: Sessions = request.app.state.runtime.sessions
    return found


def signed_in(request: Request) -> WorkspaceRecord | None:
    """The workspace of the request's session cookie, if any (for pages and read-only API calls)."""
    if getattr(request.app.state, "runtime", None) is None:
        return None
    return sessions(request).workspace(request.cookies.get(COOKIE))


def read_only_session(request: Request) -> WorkspaceRecord | None:
    """The session's workspace for an API read; writes never ride on a cookie."""
    if request.method not in SAFE_METHODS:
        return None
    return signed_in(request)


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session(response: Response, request: Request, ws: WorkspaceRecord) -> None:
    response.set_cookie(COOKIE, sessions(request).token(ws), max_age=LIFETIME_S, path="/", httponly=True,
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


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """A form post is ours: it repeats the CSRF cookie, and comes from this origin if it says."""
    cookie = request.cookies.get(CSRF_COOKIE)
    if not cookie or not submitted or not hmac.compare_digest(cookie, submitted):
        return False
    origin = request.headers.get("origin")
    if origin and origin != "null":
        host = request.headers.get("host", "")
        if origin not in (f"http://{host}", f"https://{host}"):
            return False
    return True
