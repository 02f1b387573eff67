"""A real inferwatch server in a subprocess, on a free loopback port, for tests and benchmarks;
and the same app in the test's own process, for tests about the HTTP contract alone."""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import ssl
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from anyio.from_thread import BlockingPortal, start_blocking_portal

from inferwatch.config import Settings

# httpx builds a TLS context for every client (~25 ms, certificates loaded from disk) even for
# plain-http loopback calls; tests make hundreds of clients, so they share this one.
TLS = ssl.create_default_context()

# The backend test servers run on, chosen by pytest's --store (tests/conftest.py).
STORE = "duckdb"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, data_dir: Path, *extra_args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.env = env or {}
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, *, same_port: bool = False) -> Server:
        """Starts the server on a free port, or on the one it had (`same_port`: a restart that
        clients pointed at its URL must find again)."""
        if not (same_port and self.port):
            self.port = free_port()
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child for its lifetime
        store = ["--store", f"chdb://{self.data_dir.resolve()}/chdb"] if STORE == "chdb" else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "inferwatch", "serve", "--port", str(self.port),
             "--data-dir", str(self.data_dir), *store, *self.extra_args],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=TLS).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    @property
    def initial_key(self) -> str:
        return (self.data_dir / "initial-api-key").read_text().strip()

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, verify=TLS, **options)

    def admin(self, method: str, path: str, body: dict[str, object] | None = None) -> httpx.Response:
        info = json.loads((self.data_dir / "server.json").read_text())
        return httpx.request(method, f"{self.url}/admin{path}", json=body, verify=TLS,
                             headers={"Authorization": f"Bearer {info['admin_token']}"}, timeout=30)

    def new_workspace(self, prefix: str = "ws") -> tuple[str, str]:
        """A fresh workspace (slug, key), so tests sharing one server never see each other's data."""
        slug = f"{prefix}-{uuid.uuid4().hex[:10]}"
        reply = self.admin("POST", "/workspaces", {"slug": slug})
        reply.raise_for_status()
        return slug, reply.json()["api_key"]


class _PortalTransport(httpx.BaseTransport):
    """A synchronous transport into an ASGI app whose event loop runs in a blocking portal's
    thread: the tests' plain `httpx.Client` calls reach the app without a socket."""

    def __init__(self, app: Any, portal: BlockingPortal) -> None:
        self._asgi = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        self._portal = portal

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # a generator body becomes bytes here, where sync iteration is allowed

        async def send() -> httpx.Response:
            response = await self._asgi.handle_async_request(request)
            content = b"".join([part async for part in response.stream])  # type: ignore[union-attr]
            return httpx.Response(response.status_code, headers=response.headers, content=content,
                                  extensions=response.extensions)

        return self._portal.call(send)


class InProcess:
    """The app of `create_app` in this process, its lifespan run once, reached through
    `httpx.ASGITransport`: for the tests about the HTTP contract, where a process and a socket
    prove nothing more. Same surface as `Server` (workspaces, admin calls, clients)."""

    url = "http://inferwatch.test"

    def __init__(self, data_dir: Path, store_url: str | None = None, **settings: Any) -> None:
        self.data_dir = data_dir
        self.settings = Settings(data_dir=data_dir, store_url=store_url, **settings)
        self.admin_token = secrets.token_urlsafe(32)
        self._stack = ExitStack()

    def start(self) -> InProcess:
        # Imported here: client processes spawned by tests import this module, and must not pay
        # for the whole app on a busy machine.
        from inferwatch import bootstrap
        from inferwatch.server import create_app
        from inferwatch.store import open_store

        store = open_store(self.settings.resolved_store_url)
        self._stack.callback(store.close)
        version = store.migrate()
        bootstrap.ensure_workspace(self.settings, store)
        self.app = create_app(self.settings, store, version, self.admin_token)
        self.portal = self._stack.enter_context(start_blocking_portal())
        self._stack.enter_context(self.portal.wrap_async_context_manager(self.app.router.lifespan_context(self.app)))
        return self

    def stop(self) -> None:
        self._stack.close()

    def client(self, **options: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, transport=_PortalTransport(self.app, self.portal), **options)

    @property
    def initial_key(self) -> str:
        return (self.data_dir / "initial-api-key").read_text().strip()

    def admin(self, method: str, path: str, body: dict[str, object] | None = None) -> httpx.Response:
        with self.client(headers={"Authorization": f"Bearer {self.admin_token}"}) as client:
            return client.request(method, f"/admin{path}", json=body)

    def new_workspace(self, prefix: str = "ws") -> tuple[str, str]:
        slug = f"{prefix}-{uuid.uuid4().hex[:10]}"
        reply = self.admin("POST", "/workspaces", {"slug": slug})
        reply.raise_for_status()
        return slug, reply.json()["api_key"]
