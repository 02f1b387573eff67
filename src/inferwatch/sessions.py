"""Dashboard sessions: a signed token standing for "signed in to workspace N with its key K".

The token never holds the API key. It holds the workspace and key ids and an expiry, signed
(HMAC-SHA256) with a secret kept in the data dir together with the key's hash, so revoking or
rotating a key signs out every browser that signed in with it, and a restart keeps people signed
in. The session acts with the key's scopes: a `read` key's session is a viewer. The cookie that
carries it, and the forms' CSRF tokens, are the dashboard's (`web/session.py`); this module is
shared by the API (`auth.py`), which accepts a session for reads only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
import time
from pathlib import Path

from inferwatch.store.base import WorkspaceRecord
from inferwatch.workspaces import KeyRing, Principal

COOKIE = "iw_session"
CSRF_COOKIE = "iw_csrf"  # the dashboard forms' double-submit token
LIFETIME_S = 30 * 24 * 3600


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
    """Issues and checks session tokens against the server's current keys."""

    def __init__(self, secret_file: Path, keys: KeyRing) -> None:
        self._secret = _load_secret(secret_file)
        self._keys = keys

    def _sign(self, who: Principal, expires: int) -> str:
        message = f"{who.ws.id}.{who.key.key_id}.{expires}.{who.key.key_hash}".encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def token(self, who: Principal, now: float | None = None) -> str:
        expires = int(now if now is not None else time.time()) + LIFETIME_S
        return f"{who.ws.id}-{who.key.key_id}.{expires}.{self._sign(who, expires)}"

    def principal(self, token: str | None, now: float | None = None) -> Principal | None:
        """Who a token signs in as; None if it is forged or expired, or its key revoked or expired."""
        if not token or token.count(".") != 2:
            return None
        who_text, expires_text, signature = token.split(".")
        ws_text, _, key_id = who_text.partition("-")
        if not (ws_text.isascii() and ws_text.isdigit() and expires_text.isascii() and expires_text.isdigit()):
            return None
        if int(expires_text) < (now if now is not None else time.time()):
            return None
        who = self._keys.by_id(int(ws_text), key_id)
        if who is None or not who.active or not hmac.compare_digest(signature, self._sign(who, int(expires_text))):
            return None
        return who

    def workspace(self, token: str | None, now: float | None = None) -> WorkspaceRecord | None:
        who = self.principal(token, now)
        return None if who is None else who.ws
