"""A real inferwatch server in a subprocess, on a free loopback port, for tests and benchmarks;
and the same app in the test's own process, for tests about the HTTP contract alone."""

from __future__ import annotations

import json
import multiprocessing
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack, suppress
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


# Test servers are forked from a process that has already imported the server, instead of each
# importing it anew: 0.5 s of CPU to be ready instead of 1.3-1.5 s, for each of the seventy or so
# a run of the suite starts. Each is still a process of its own (its own pid, log, port and data
# dir), stopped, killed, restarted and traced as one; what a fresh interpreter does (`python -m
# inferwatch`) is the CLI tests' part. A server of another source tree (`PYTHONPATH` in its env:
# the benchmarks' `--src`) is started by a fresh interpreter, as imports already made cannot be
# made again from elsewhere.
_FORKS = multiprocessing.get_context("forkserver")
_FORKS.set_forkserver_preload(["inferwatch.cli", "inferwatch.server", "inferwatch.store.duckdb"])


def _serve(argv: list[str], env: dict[str, str], log_path: str) -> None:
    """`inferwatch <argv>` in a forked child, its output in the log as a Popen'd one's would be."""
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.environ.update(env)
    from inferwatch.cli import app

    app(argv, prog_name="inferwatch")


class _Exec(subprocess.Popen[bytes]):
    """A server in a fresh interpreter, with the two calls of a forked one that `Server` uses."""

    @property
    def exitcode(self) -> int | None:
        return self.poll()

    def join(self, timeout: float | None = None) -> None:
        with suppress(subprocess.TimeoutExpired):
            self.wait(timeout)


class Server:
    def __init__(self, data_dir: Path, *extra_args: str, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.extra_args = extra_args
        self.env = env or {}
        self.port = 0
        self.proc: multiprocessing.process.BaseProcess | _Exec | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}-server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0, *, same_port: bool = False) -> Server:
        """Starts the server on a free port, or on the one it had (`same_port`: a restart that
        clients pointed at its URL must find again)."""
        if not (same_port and self.port):
            self.port = free_port()
        store = ["--store", f"chdb://{self.data_dir.resolve()}/chdb"] if STORE == "chdb" else []
        argv = ["serve", "--port", str(self.port), "--data-dir", str(self.data_dir), *store, *self.extra_args]
        if "PYTHONPATH" in self.env:
            with open(self.log_path, "ab") as log:
                self.proc = _Exec([sys.executable, "-m", "inferwatch", *argv], stdout=log,
                                  stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        else:
            self.proc = _FORKS.Process(target=_serve, args=(argv, self.env, str(self.log_path)))
            self.proc.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.exitcode is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=TLS).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server did not start: {self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc and self.proc.exitcode is None:
            self.proc.terminate()
            self.proc.join(30)
            if self.proc.exitcode is None:
                self.proc.kill()
                self.proc.join()
        self.proc = None

    def kill(self) -> None:
        if self.proc and self.proc.exitcode is None:
            self.proc.kill()
            self.proc.join()
        self.proc = None

    @property
    def pid(self) -> int:
        """The running server's process id, for what reads /proc or traces it."""
        assert self.proc is not None and self.proc.pid is not None, "the server is not running"
        return self.proc.pid

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

        # A hang fails the caller on its read timeout, as over a socket (the app's task is left to
        # run: a handler in a worker thread cannot be cancelled).
        timeout = request.extensions.get("timeout", {}).get("read")
        return self._portal.start_task_soon(send).result(timeout)


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
