"""`inferwatch key`: create, list, revoke and expire named keys, through a running server and on
the store directly when none runs; what one way leaves, the other (and the server) honours."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.server import Server

pytestmark = pytest.mark.process  # starts inferwatch processes of its own


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inferwatch", *args], capture_output=True, text=True,
                          timeout=60)


def key_from(output: str) -> str:
    return output.strip().splitlines()[-1]


def reads(server: Server, slug: str, key: str) -> int:
    return httpx.get(f"{server.url}/api/v1/{slug}/inferences", headers={"Authorization": f"Bearer {key}"}).status_code


def test_key_commands_without_a_server(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    assert cli("workspace", "create", "acme", "--data-dir", data).returncode == 0
    viewer = cli("key", "create", "acme", "wall-screen", "--scopes", "read", "--data-dir", data)
    assert viewer.returncode == 0, viewer.stderr
    device = cli("key", "create", "acme", "camera-1", "--data-dir", data)  # ingest unless told
    temp = cli("key", "create", "acme", "contractor", "--scopes", "read", "--expires", "2999-01-01T00:00:00Z",
               "--data-dir", data)
    assert device.returncode == 0 and temp.returncode == 0, device.stderr + temp.stderr
    expired = cli("key", "expire", "acme", "contractor", "--at", "2000-01-01T00:00:00Z", "--data-dir", data)
    assert expired.returncode == 0, expired.stderr
    assert cli("key", "revoke", "acme", "camera-1", "--data-dir", data).returncode == 0
    listed = cli("key", "list", "acme", "--data-dir", data).stdout
    assert "wall-screen" in listed and "camera-1" in listed and "contractor" in listed
    assert key_from(viewer.stdout) not in listed
    refused = cli("key", "create", "acme", "bad", "--scopes", "root", "--data-dir", data)
    assert refused.returncode == 1 and "unknown scope" in refused.stderr

    srv = Server(Path(data)).start()
    try:
        assert reads(srv, "acme", key_from(viewer.stdout)) == 200
        assert reads(srv, "acme", key_from(device.stdout)) == 401  # revoked
        assert reads(srv, "acme", key_from(temp.stdout)) == 401  # expired
    finally:
        srv.stop()


def test_key_commands_ask_the_running_server(own_server: Server) -> None:
    data = str(own_server.data_dir)
    made = cli("key", "create", "default", "dashboard", "--scopes", "read,manage", "--data-dir", data)
    assert made.returncode == 0, made.stderr
    key = key_from(made.stdout)
    assert reads(own_server, "default", key) == 200  # at once: the server's key ring is reloaded
    assert "dashboard" in cli("key", "list", "default", "--data-dir", data).stdout
    assert cli("key", "revoke", "default", "dashboard", "--data-dir", data).returncode == 0
    assert reads(own_server, "default", key) == 401
    trail = httpx.get(f"{own_server.url}/api/v1/default/audit",
                      headers={"Authorization": f"Bearer {own_server.initial_key}"}).json()["events"]
    assert [(e["actor"], e["action"], e["target"]) for e in trail[:2]] == [
        ("cli", "key.revoked", "dashboard"), ("cli", "key.created", "dashboard")]
    missing = cli("key", "revoke", "default", "nope", "--data-dir", data)
    assert missing.returncode == 1 and "no key" in missing.stderr
