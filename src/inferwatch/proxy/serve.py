"""Running the proxy: alone (`inferwatch proxy`, recording through the SDK) or mounted in the
server (`inferwatch serve --proxy-upstream`, recording into its writer)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from inferwatch.proxy.app import Proxy
from inferwatch.proxy.recorder import SdkRecorder, WriterRecorder

if TYPE_CHECKING:
    from fastapi import FastAPI

# Where the proxy is mounted in the server: the inference server's routes (`/{project}/{version}`,
# `/healthz`, `/metrics`, `/info`) would collide with inferwatch's own at the root.
MOUNT_PATH = "/proxy"


class KeyRefused(Exception):
    """inferwatch answered, and the key is not one of its workspaces' keys."""


def probe_workspace(server: str, api_key: str) -> str | None:
    """The workspace of the key, asked once at start so a wrong key is said at once rather than
    retried forever in the background; None when inferwatch cannot be reached now (the proxy
    starts anyway: results wait in the spool until it is back)."""
    try:
        reply = httpx.get(f"{server.rstrip('/')}/", params={"api_key": api_key}, timeout=5)
    except httpx.HTTPError:
        return None
    if reply.status_code in (401, 403):
        raise KeyRefused(f"inferwatch at {server} refused the API key ({reply.status_code})")
    if reply.status_code != 200:
        return None
    try:
        return str(reply.json()["workspace"])
    except (ValueError, KeyError, TypeError):
        return None


def run_proxy(upstream: str, server: str, api_key: str, *, host: str, port: int, workspace: str | None = None,
              spool_dir: Path | None = None) -> None:
    """Serves the proxy until interrupted; on the way out the SDK sends (or spools) what it holds."""
    import uvicorn

    from inferwatch.sdk import Client

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    client = Client(server, api_key, workspace, spool_dir=spool_dir)
    app = Proxy(upstream, SdkRecorder(client))
    # The upstream's own Date and Server headers pass through; uvicorn must not add a second pair.
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, loop="uvloop",
                http="httptools", server_header=False, date_header=False, lifespan="on")


def mount(app: FastAPI, upstream: str, default_workspace: str | None) -> Proxy:
    """Mounts the proxy at MOUNT_PATH in the server's app; the caller closes it at shutdown."""
    proxy = Proxy(upstream, WriterRecorder(lambda: app.state.runtime, default_workspace), own_server_headers=True)
    app.mount(MOUNT_PATH, proxy, name="proxy")
    return proxy
