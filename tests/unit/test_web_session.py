"""Dashboard sessions on a real store: a cookie stands for one workspace with its current key,
expires, and cannot be forged or carried over a key rotation; sign-in only redirects locally."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from inferwatch import workspaces
from inferwatch.sessions import LIFETIME_S, Sessions
from inferwatch.store.duckdb import DuckDBStore
from inferwatch.web.pages import _safe_next
from inferwatch.workspaces import KeyRing, Principal


@pytest.fixture
def store(tmp_path: Path) -> DuckDBStore:
    opened = DuckDBStore(str(tmp_path / "store.duckdb"))
    opened.migrate()
    return opened


def _who(keys: KeyRing, key: str) -> Principal:
    who = keys.principal(key)
    assert who is not None
    return who


def test_a_token_names_its_workspace_until_it_expires(store: DuckDBStore, tmp_path: Path) -> None:
    ws, key = workspaces.create(store, "acme")
    keys = KeyRing(store)
    sessions = Sessions(tmp_path / "session-secret", keys)
    token = sessions.token(_who(keys, key), now=1000.0)
    assert sessions.workspace(token, now=1000.0 + LIFETIME_S - 1) == ws
    assert sessions.workspace(token, now=1000.0 + LIFETIME_S + 1) is None


def test_forged_and_malformed_tokens_name_nobody(store: DuckDBStore, tmp_path: Path) -> None:
    _, key = workspaces.create(store, "acme")
    other, _ = workspaces.create(store, "other")
    keys = KeyRing(store)
    sessions = Sessions(tmp_path / "session-secret", keys)
    ws_id, expires, signature = sessions.token(_who(keys, key)).split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    for forged in (f"{other.id}.{expires}.{signature}", f"{ws_id}.{int(expires) + 1}.{signature}",
                   f"{ws_id}.{expires}.{flipped}", "", "a.b.c", "1.2", "\u0661.2.x", f"999.{expires}.{signature}"):
        assert sessions.workspace(forged) is None, forged


def test_rotating_the_key_ends_its_sessions(store: DuckDBStore, tmp_path: Path) -> None:
    _, key = workspaces.create(store, "acme")
    keys = KeyRing(store)
    sessions = Sessions(tmp_path / "session-secret", keys)
    token = sessions.token(_who(keys, key))
    workspaces.rotate(store, "acme")
    keys.reload()
    assert sessions.workspace(token) is None


def test_the_secret_is_private_and_survives_a_restart(store: DuckDBStore, tmp_path: Path) -> None:
    ws, key = workspaces.create(store, "acme")
    secret = tmp_path / "data" / "session-secret"
    token = Sessions(secret, KeyRing(store)).token(_who(KeyRing(store), key))
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert Sessions(secret, KeyRing(store)).workspace(token) == ws
    assert Sessions(tmp_path / "elsewhere", KeyRing(store)).workspace(token) is None


@pytest.mark.parametrize(("target", "expected"), [
    ("/inferences?meta.a=b", "/inferences?meta.a=b"),
    (None, "/overview"),
    ("https://evil.example/", "/overview"),
    ("//evil.example/", "/overview"),
    ("/\\evil.example/", "/overview"),
    ("/\t/evil.example/", "/overview"),
    ("/\n/evil.example/", "/overview"),
])
def test_signing_in_only_goes_on_to_a_local_page(target: str | None, expected: str) -> None:
    assert _safe_next(target) == expected
