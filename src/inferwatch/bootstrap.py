"""First start and the files a running server leaves in its data dir.

`server.json` tells the CLI where the server listens and the admin token it accepts, so the
`workspace` commands work while the server holds the database. `initial-api-key` keeps the
first workspace's key so `make run` can print it on every start until it is rotated.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import msgspec

from inferwatch import workspaces
from inferwatch.config import Settings
from inferwatch.store.base import Store
from inferwatch.workspaces import hash_key


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def ensure_workspace(settings: Settings, store: Store) -> tuple[str, str | None]:
    """Creates the first workspace on an empty store. Returns its slug and key, when known."""
    existing = store.workspaces()
    if not existing:
        ws, key = workspaces.create(store, settings.default_workspace)
        _write_private(settings.initial_key_file, key.encode())
        return ws.slug, key
    return existing[0].slug, initial_key(settings, store)


def initial_key(settings: Settings, store: Store) -> str | None:
    """The first workspace's key while it is still valid (a rotation or revocation makes it stale)."""
    try:
        key = settings.initial_key_file.read_text().strip()
    except OSError:
        return None
    hashed = hash_key(key)
    if any(k.key_hash == hashed and k.revoked_at is None for k in store.api_keys(None)):
        return key
    with contextlib.suppress(OSError):
        settings.initial_key_file.unlink()
    return None


def write_server_file(settings: Settings, admin_token: str) -> None:
    info = {"url": f"http://{connect_host(settings.host)}:{settings.port}", "admin_token": admin_token,
            "pid": os.getpid()}
    _write_private(settings.server_file, msgspec.json.encode(info))


def remove_server_file(settings: Settings, admin_token: str) -> None:
    """Removes the file only if it is still ours (a second server may have replaced it)."""
    info = read_server_file(settings)
    if info and info.get("admin_token") == admin_token:
        with contextlib.suppress(OSError):
            settings.server_file.unlink()


def read_server_file(settings: Settings) -> dict[str, object] | None:
    try:
        info = msgspec.json.decode(settings.server_file.read_bytes())
    except (OSError, msgspec.DecodeError):
        return None
    return info if isinstance(info, dict) else None


def connect_host(host: str) -> str:
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host
