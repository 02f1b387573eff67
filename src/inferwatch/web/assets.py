"""The dashboard's static files, all served by inferwatch itself (an air-gapped plant has no CDN).

Our own CSS and scripts live in `static/`. The charting library is plotly.js as shipped inside
the `plotly` wheel: nothing to download or build. At ~4.8 MB it is gzipped once in memory and
sent compressed (~1.4 MB) with a long cache lifetime keyed by the plotly version.
"""

from __future__ import annotations

import gzip
import hashlib
import threading
from importlib import metadata, resources
from pathlib import Path

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.staticfiles import StaticFiles

from inferwatch.auth import public

STATIC_DIR = Path(__file__).parent / "static"
router = APIRouter(include_in_schema=False)
_lock = threading.Lock()
_plotly: tuple[bytes, bytes, str] | None = None  # (plain, gzipped, etag)


def static_files() -> StaticFiles:
    return StaticFiles(directory=STATIC_DIR)


def _plotly_bundle() -> tuple[bytes, bytes, str]:
    global _plotly
    with _lock:
        if _plotly is None:
            plain = (resources.files("plotly") / "package_data" / "plotly.min.js").read_bytes()
            version = metadata.version("plotly")
            etag = f'"plotly-{version}-{hashlib.sha256(plain).hexdigest()[:16]}"'
            _plotly = (plain, gzip.compress(plain, compresslevel=6, mtime=0), etag)
        return _plotly


_ICON = (STATIC_DIR / "favicon.ico").read_bytes()


def favicon() -> Response:
    """`/favicon.ico`, which browsers ask for on every page whatever the page links: a 404 there
    filled every log and console. The same picture as `favicon.svg`, as a 16 and 32 px icon."""
    return Response(_ICON, media_type="image/x-icon", headers={"Cache-Control": "public, max-age=86400"})


@router.get("/vendor/plotly.min.js", dependencies=[Depends(public)])
def plotly_js(request: Request) -> Response:
    plain, packed, etag = _plotly_bundle()
    headers = {"ETag": etag, "Cache-Control": "public, max-age=86400", "Vary": "Accept-Encoding",
               "X-Content-Type-Options": "nosniff"}
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    if "gzip" in request.headers.get("accept-encoding", ""):
        return Response(packed, media_type="text/javascript", headers={**headers, "Content-Encoding": "gzip"})
    return Response(plain, media_type="text/javascript", headers=headers)
