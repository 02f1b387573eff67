"""Workspaces and their API keys: many named keys per workspace, each with its scopes.

A key is a bearer secret of high entropy (or a Roboflow key a team brings along), stored only as
its SHA-256, so a stolen database is useless for signing in. The server looks a request's key up
in memory (a dict by hash: the hash of a secret the client sent reveals nothing through timing),
so checking a key and its scopes costs no database read. Last use is noted in memory and written
by `flush` every minute or so, never on a request's write path.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import msgspec

from inferwatch.errors import InvalidRequest, NotFound
from inferwatch.store.base import ApiKeyRecord, AuditRecord, Store, WorkspaceRecord
from inferwatch.store.rows import iso, now_utc

log = logging.getLogger(__name__)
_STOP = threading.Event()  # never set: the refresh threads are daemons that end with the process
SLUG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
KEY = re.compile(r"^[\x21-\x7e]{8,256}$")
KEY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,63}$")
SCOPES = ("ingest", "read", "manage")  # what `auth.Scope` names; a key holds one or more
DEFAULT_KEY = "default"  # the key a workspace is made with, and the one `rotate-key` replaces
CLI_ACTOR = "cli"  # the audit's name for the command line and the admin routes it calls


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


def check_scopes(scopes: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The scopes in their canonical order; at least one, each known."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise InvalidRequest(f"unknown scope {unknown[0]!r}; scopes are {', '.join(SCOPES)}")
    if not scopes:
        raise InvalidRequest(f"a key needs at least one scope of {', '.join(SCOPES)}")
    return tuple(s for s in SCOPES if s in scopes)


def audit(store: Store, ws: int, actor: str, action: str, target: str, **detail: object) -> None:
    """One line of the audit trail (in the caller's writer call, beside the change it records)."""
    store.add_audit(AuditRecord(ws, now_utc(), actor, action, target, msgspec.json.encode(detail).decode()))


def _unused_hash(store: Store, hashed: str) -> None:
    if any(k.key_hash == hashed for k in store.api_keys(None)):
        raise InvalidRequest("that API key is already in use")


def create(store: Store, slug: str, key: str | None = None,
           scopes: tuple[str, ...] = SCOPES) -> tuple[WorkspaceRecord, str]:
    """A workspace with its first key, `default` (every scope unless told otherwise)."""
    check_slug(slug)
    scopes = check_scopes(scopes)
    key = check_key(key) if key is not None else new_key()
    hashed = hash_key(key)
    if any(ws.slug == slug for ws in store.workspaces()):
        raise InvalidRequest(f"workspace {slug!r} exists")
    _unused_hash(store, hashed)
    ws = store.create_workspace(slug, hashed)
    store.put_api_key(ApiKeyRecord(ws.id, secrets.token_hex(6), DEFAULT_KEY, hashed, scopes, ws.created_at))
    audit(store, ws.id, CLI_ACTOR, "workspace.created", slug, scopes=list(scopes))
    return ws, key


def _workspace(store: Store, slug: str) -> WorkspaceRecord:
    found = next((ws for ws in store.workspaces() if ws.slug == slug), None)
    if found is None:
        raise InvalidRequest(f"no workspace {slug!r}")
    return found


def add_key(store: Store, ws: int, name: str, scopes: tuple[str, ...] | list[str],
            expires_at: datetime | None, actor: str, key: str | None = None) -> tuple[ApiKeyRecord, str]:
    """A new named key; the secret is returned here once and never again."""
    if not KEY_NAME.match(name):
        raise InvalidRequest("key names are 1-64 letters, digits, spaces, '.', '-' or '_'")
    scopes = check_scopes(scopes)
    at = now_utc()
    if expires_at is not None and expires_at <= at:
        raise InvalidRequest("expires_at is in the past")
    if any(k.name == name and k.revoked_at is None for k in store.api_keys(ws)):
        raise InvalidRequest(f"the workspace has a key named {name!r}; revoke it or pick another name")
    key = check_key(key) if key is not None else new_key()
    hashed = hash_key(key)
    _unused_hash(store, hashed)
    record = ApiKeyRecord(ws, secrets.token_hex(6), name, hashed, scopes, at, expires_at)
    store.put_api_key(record)
    audit(store, ws, actor, "key.created", name, key_id=record.key_id, scopes=list(scopes),
          expires_at=iso(expires_at))
    return record, key


def find_key(store: Store, ws: int, key: str) -> ApiKeyRecord:
    """A key by its id, or by its name among the keys not revoked (what a user types)."""
    keys = store.api_keys(ws)
    found = next((k for k in keys if k.key_id == key), None) or next(
        (k for k in keys if k.name == key and k.revoked_at is None), None)
    if found is None:
        raise NotFound(f"no key {key!r} in this workspace")
    return found


def revoke_key(store: Store, ws: int, key: str, actor: str) -> ApiKeyRecord:
    found = find_key(store, ws, key)
    if found.revoked_at is not None:
        return found
    record = replace(found, revoked_at=now_utc())
    store.put_api_key(record)
    audit(store, ws, actor, "key.revoked", found.name, key_id=found.key_id)
    return record


def set_expiry(store: Store, ws: int, key: str, expires_at: datetime | None, actor: str) -> ApiKeyRecord:
    found = find_key(store, ws, key)
    if found.revoked_at is not None:
        raise InvalidRequest("that key is revoked")
    record = replace(found, expires_at=expires_at, expiry_noted=False)
    store.put_api_key(record)
    audit(store, ws, actor, "key.expiry_set", found.name, key_id=found.key_id, expires_at=iso(expires_at),
          previous=iso(found.expires_at))
    return record


def rotate(store: Store, slug: str) -> tuple[WorkspaceRecord, str]:
    """Replaces the workspace's `default` key with a new one (every scope); other keys stay."""
    old = _workspace(store, slug)
    key = new_key()
    hashed = hash_key(key)
    previous = [k for k in store.api_keys(old.id) if k.name == DEFAULT_KEY and k.revoked_at is None]
    # The new key first, the old one revoked last: a replica reading in between never finds
    # the workspace without a default key.
    record = ApiKeyRecord(old.id, secrets.token_hex(6), DEFAULT_KEY, hashed, SCOPES, now_utc())
    store.put_api_key(record)
    ws = store.set_key_hash(slug, hashed)
    for stale in previous:
        store.put_api_key(replace(stale, revoked_at=now_utc()))
    audit(store, ws.id, CLI_ACTOR, "key.rotated", DEFAULT_KEY, key_id=record.key_id)
    return ws, key


def note_expired(store: Store, keys: list[ApiKeyRecord], at: datetime) -> int:
    """Records in the audit trail each key that expired since the last look, once."""
    done = 0
    for record in keys:
        if record.expires_at is not None and record.expires_at <= at and not record.expiry_noted \
                and record.revoked_at is None:
            store.put_api_key(replace(record, expiry_noted=True))
            audit(store, record.ws, "system", "key.expired", record.name, key_id=record.key_id,
                  expires_at=iso(record.expires_at))
            done += 1
    return done


def describe_key(record: ApiKeyRecord) -> dict[str, object]:
    """A key as the API and the CLI list it: never its secret nor its hash."""
    return {"id": record.key_id, "name": record.name, "scopes": list(record.scopes),
            "created_at": iso(record.created_at), "last_used_at": iso(record.last_used_at),
            "expires_at": iso(record.expires_at), "revoked_at": iso(record.revoked_at)}


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as: a workspace through one of its keys."""

    ws: WorkspaceRecord
    key: ApiKeyRecord

    def can(self, scope: str) -> bool:
        return scope in self.key.scopes

    def expired(self, at: float | None = None) -> bool:
        expires = self.key.expires_at
        return expires is not None and expires.replace(tzinfo=UTC).timestamp() <= (at or time.time())

    @property
    def active(self) -> bool:
        return self.key.revoked_at is None and not self.expired()


# How often a server on a shared store (one that other servers write too: ClickHouse) reads the
# workspaces again, so a workspace made or a key rotated through one replica holds on all of them
# within this many seconds.
SHARED_REFRESH_S = 5.0


class KeyRing:
    """The server's view of workspaces and their keys, reloaded after every change it makes, and
    every few seconds when the store is shared with other servers (its `shared` attribute is
    true), until the store is closed. Keeps the keys' last use until `flush` writes it."""

    def __init__(self, store: Store, refresh_s: float = SHARED_REFRESH_S) -> None:
        self._store = store
        self._lock = threading.Lock()
        self._reload_lock = threading.Lock()
        self._records: list[WorkspaceRecord] = []
        self._keys: list[ApiKeyRecord] = []
        self._by_hash: dict[str, Principal] = {}
        self._used: dict[tuple[int, str], float] = {}
        self.reload()
        if store.shared:
            threading.Thread(target=self._refresh, args=(refresh_s,), name="inferwatch-keyring",
                             daemon=True).start()

    def _refresh(self, every_s: float) -> None:
        while not _STOP.wait(every_s) and not self._store.closed:
            try:
                self.reload()
            except Exception:  # a closed store at shutdown, a replica of the store briefly away
                log.debug("reloading workspaces failed", exc_info=True)

    def reload(self) -> None:
        # Read and swap in one hold: a periodic reload that read just before a change must not
        # swap its older list in after the change's own reload (the new key would fail for 5 s).
        with self._reload_lock:
            records = self._store.workspaces()
            keys = self._store.api_keys(None)
            by_id = {ws.id: ws for ws in records}
            by_hash = {k.key_hash: Principal(by_id[k.ws], k) for k in keys if k.ws in by_id}
            with self._lock:
                self._records, self._keys, self._by_hash = records, keys, by_hash

    def lookup(self, key: str) -> Principal | None:
        """The key's workspace and record, revoked or expired ones included (the caller says why
        it refuses them)."""
        return self._by_hash.get(hash_key(key))

    def principal(self, key: str) -> Principal | None:
        """The key's workspace and record if the key is valid now."""
        found = self.lookup(key)
        return found if found is not None and found.active else None

    def by_key(self, key: str) -> WorkspaceRecord | None:
        found = self.principal(key)
        return None if found is None else found.ws

    def by_id(self, ws: int, key_id: str) -> Principal | None:
        return next((p for p in self._by_hash.values() if p.key.key_id == key_id and p.ws.id == ws), None)

    def by_slug(self, slug: str) -> WorkspaceRecord | None:
        return next((ws for ws in self._records if ws.slug == slug), None)

    def all(self) -> list[WorkspaceRecord]:
        return list(self._records)

    def keys(self, ws: int) -> list[ApiKeyRecord]:
        """The workspace's keys, their last use as this server knows it (written or not yet)."""
        used = dict(self._used)
        out = []
        for k in self._keys:
            if k.ws != ws:
                continue
            seen = used.get((k.ws, k.key_id))
            if seen is not None:
                at = datetime.fromtimestamp(seen, UTC).replace(tzinfo=None)
                if k.last_used_at is None or at > k.last_used_at:
                    k = replace(k, last_used_at=at)
            out.append(k)
        return out

    def note_use(self, who: Principal) -> None:
        """One dict write per request: the time is written to the store by `flush`."""
        self._used[(who.ws.id, who.key.key_id)] = time.time()

    def flush(self, store: Store) -> None:
        """Writes the last uses noted since the last flush, and notes keys that expired (in the
        writer thread)."""
        with self._lock:
            used, self._used = self._used, {}
        if used:
            store.note_key_use({k: datetime.fromtimestamp(t, UTC).replace(tzinfo=None) for k, t in used.items()})
        if note_expired(store, store.api_keys(None), now_utc()) or used:
            self.reload()
