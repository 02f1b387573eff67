"""The `inferwatch` command: serve's banner, and workspace commands with and without a server."""

from __future__ import annotations

import subprocess
import sys
import textwrap
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


def workspace_of(server: Server, key: str) -> httpx.Response:
    return httpx.get(f"{server.url}/", params={"api_key": key})


def test_serve_prints_url_and_key_of_first_workspace(own_server: Server) -> None:
    banner = own_server.log_path.read_text()
    assert f"dashboard: http://127.0.0.1:{own_server.port}/" in banner
    assert f"API key:   {own_server.initial_key}" in banner
    assert workspace_of(own_server, own_server.initial_key).json() == {"workspace": "default"}


def test_workspace_commands_without_a_server(tmp_path: Path) -> None:
    data = str(tmp_path / "data")
    created = cli("workspace", "create", "acme", "--data-dir", data)
    assert created.returncode == 0, created.stderr
    key = key_from(created.stdout)
    own = cli("workspace", "create", "plant-2", "--api-key", "rf-EXISTING-key-123", "--data-dir", data)
    assert own.returncode == 0, own.stderr
    assert key_from(own.stdout) == "rf-EXISTING-key-123"
    listed = cli("workspace", "list", "--data-dir", data)
    assert "acme" in listed.stdout and "plant-2" in listed.stdout
    rotated = cli("workspace", "rotate-key", "acme", "--data-dir", data)
    assert rotated.returncode == 0, rotated.stderr
    new_key = key_from(rotated.stdout)
    assert new_key != key

    # The server started afterwards honours exactly the keys the commands left.
    srv = Server(Path(data)).start()
    try:
        assert workspace_of(srv, new_key).json() == {"workspace": "acme"}
        assert workspace_of(srv, "rf-EXISTING-key-123").json() == {"workspace": "plant-2"}
        assert workspace_of(srv, key).status_code == 401
    finally:
        srv.stop()


def test_workspace_commands_ask_the_own_server_server(own_server: Server) -> None:
    data = str(own_server.data_dir)
    created = cli("workspace", "create", "line-3", "--data-dir", data)
    assert created.returncode == 0, created.stderr
    key = key_from(created.stdout)
    assert workspace_of(own_server, key).json() == {"workspace": "line-3"}

    assert "line-3" in cli("workspace", "list", "--data-dir", data).stdout

    rotated = cli("workspace", "rotate-key", "line-3", "--data-dir", data)
    assert rotated.returncode == 0, rotated.stderr
    assert workspace_of(own_server, key).status_code == 401  # the old key stops at once
    assert workspace_of(own_server, key_from(rotated.stdout)).json() == {"workspace": "line-3"}

    duplicate = cli("workspace", "create", "line-3", "--data-dir", data)
    assert duplicate.returncode == 1
    assert "exists" in duplicate.stderr


def test_rotating_the_first_key_stops_printing_it(tmp_path: Path) -> None:
    srv = Server(tmp_path / "data").start()
    try:
        first = srv.initial_key
        assert cli("workspace", "rotate-key", "default", "--data-dir", str(srv.data_dir)).returncode == 0
        assert workspace_of(srv, first).status_code == 401
    finally:
        srv.stop()
    assert not (srv.data_dir / "initial-api-key").exists()


def test_locked_store_without_a_server_is_a_clear_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert cli("workspace", "create", "acme", "--data-dir", str(data)).returncode == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys, time
            con = duckdb.connect({str(data / 'inferwatch.duckdb')!r})
            print('locked', flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        listed = cli("workspace", "list", "--data-dir", str(data))
        assert listed.returncode == 1
        assert "in use by another process" in listed.stderr
        assert "Traceback" not in listed.stderr
    finally:
        holder.kill()
        holder.wait()


def test_invalid_workspace_name_is_refused(tmp_path: Path) -> None:
    result = cli("workspace", "create", "<script>", "--data-dir", str(tmp_path / "data"))
    assert result.returncode == 1
    assert "workspace names" in result.stderr
