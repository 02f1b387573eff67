"""Workspaces and their API keys. Keys are stored only as SHA-256 hashes.

A key is a bearer secret of high entropy (or a Roboflow key a team brings along), so a plain
hash is enough to make a stolen database useless for signing in; looking a key up compares it
against every workspace's hash in constant time, so timing tells nothing about which is close.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import threading

from inferwatch.errors import InvalidRequest
from inferwatch.store.base import Store, WorkspaceRecord

log = logging.getLogger(__name__)
_STOP = threading.Event()  # never set: the refresh threads are daemons that end with the process
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KEY = re.compile(r"^[\x21-\x7e]{8,256}$")


def new_key() -> str:
    return secrets.token_urlsafe(24)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def check_slug(slug: str) -> str:
    if not SLUG.match(slug):
        raise InvalidRequest("workspace names are 1-64 letters, digits, '-' or '_', starting with a letter or digit")
    return slug


def check_key(key: str) -> str:
    if not KEY.match(key):
        raise InvalidRequest("API keys are 8-256 printable characters without spaces")
    return key


def create(store: Store, slug: str, key: str | None = None) -> tuple[WorkspaceRecord, str]:
    check_slug(slug)
    key = check_key(key) if key is not None else new_key()
    hashed = hash_key(key)
    for ws in store.workspaces():
        if ws.slug == slug:
            raise InvalidRequest(f"workspace {slug!r} exists")
        if hmac.compare_digest(ws.key_hash, hashed):
            raise InvalidRequest("that API key belongs to another workspace")
    return store.create_workspace(slug, hashed), key


def rotate(store: Store, slug: str) -> tuple[WorkspaceRecord, str]:
    key = new_key()
    try:
        return store.set_key_hash(slug, hash_key(key)), key
    except KeyError:
        raise InvalidRequest(f"no workspace {slug!r}") from None


# How often a server on a shared store (one that other servers write too: ClickHouse) reads the
# workspaces again, so a workspace made or a key rotated through one replica holds on all of them
# within this many seconds.
SHARED_REFRESH_S = 5.0


class KeyRing:
    """The server's view of workspaces, reloaded after every change it makes, and every few
    seconds when the store is shared with other servers (its `shared` attribute is true), until
    the store is closed."""

    def __init__(self, store: Store, refresh_s: float = SHARED_REFRESH_S) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._records: list[WorkspaceRecord] = []
        self.reload()
        if getattr(store, "shared", False):
            threading.Thread(target=self._refresh, args=(refresh_s,), name="inferwatch-keyring",
                             daemon=True).start()

    def _refresh(self, every_s: float) -> None:
        while not _STOP.wait(every_s) and not getattr(self._store, "closed", False):
            try:
                self.reload()
            except Exception:  # a closed store at shutdown, a replica of the store briefly away
                log.debug("reloading workspaces failed", exc_info=True)

    def reload(self) -> None:
        # Read and swap in one hold: a periodic reload that read just before a change must not
        # swap its older list in after the change's own reload (the new key would fail for 5 s).
        with self._reload_lock:
            records = self._store.workspaces()
            with self._lock:
                self._records = records

    def by_key(self, key: str) -> WorkspaceRecord | None:
        hashed = hash_key(key)
        found = None
        for ws in self._records:
            if hmac.compare_digest(ws.key_hash, hashed):
                found = ws
        return found

    def by_slug(self, slug: str) -> WorkspaceRecord | None:
        return next((ws for ws in self._records if ws.slug == slug), None)

    def all(self) -> list[WorkspaceRecord]:
        return list(self._records)
