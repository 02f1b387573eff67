"""What every route needs: the server's runtime, bounded body reading, the request's key, JSON answers."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import msgspec
from fastapi import Request
from fastapi.responses import Response
from starlette.requests import ClientDisconnect

from inferwatch.config import Settings
from inferwatch.errors import InvalidRequest, PayloadTooLarge, RateLimited, RequestTimeout
from inferwatch.image_store import ImageStore
from inferwatch.ingest import limits
from inferwatch.ingest.writer import Writer
from inferwatch.model_metrics import ModelSeries
from inferwatch.ratelimit import RateLimiter
from inferwatch.schedule import Schedule
from inferwatch.sessions import Sessions
from inferwatch.store.base import Store
from inferwatch.workspaces import KeyRing

_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: Store
    writer: Writer
    keys: KeyRing
    admin_token: str
    schema_version: int
    images: ImageStore
    sessions: Sessions
    schedule: Schedule
    limiter: RateLimiter | None = None  # per-key rate limit, None when off
    series: ModelSeries | None = None  # the workspaces' per-model Prometheus series


def runtime(request: Request) -> Runtime:
    rt: Runtime = request.app.state.runtime
    return rt


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return _encode(content)


async def read_raw(request: Request, limit: int) -> bytes:
    """The body as sent, refused with 413 past `limit` (declared or streamed)."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise PayloadTooLarge(f"body over {limit} bytes")
        except ValueError:
            raise InvalidRequest("bad Content-Length") from None
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise PayloadTooLarge(f"body over {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # it left, or the read deadline closed it: not a server error
        raise RequestTimeout("the client stopped sending the body") from None
    return b"".join(chunks)


async def read_body(request: Request) -> bytes:
    """The body, refused with 413 past the limits as sent and after gzip decompression."""
    body = await read_raw(request, limits.MAX_BODY_BYTES)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding == "gzip":
        body = _gunzip(body)
    elif encoding not in ("", "identity"):
        raise InvalidRequest(f"unsupported Content-Encoding {encoding!r}; use gzip or none")
    _check_utf8(body)
    return body


def _check_utf8(body: bytes) -> None:
    """JSON is UTF-8; msgspec raises UnicodeDecodeError (not a DecodeError) on anything else,
    which every route would have to catch. Checked once here; an ASCII body (the usual JSON,
    with escapes) is told apart without decoding it."""
    if body.isascii():
        return
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidRequest(f"body is not valid UTF-8 (byte {exc.start}: {exc.reason})") from None


def _gunzip(body: bytes) -> bytes:
    """Every member of the stream (`cat a.gz b.gz` is valid gzip), at most MAX_DECODED_BYTES in all."""
    parts: list[bytes] = []
    size = 0
    data = body
    while True:
        inflater = zlib.decompressobj(wbits=31)
        try:
            # One byte past the room left tells "over the limit" apart from "exactly at it".
            out = inflater.decompress(data, limits.MAX_DECODED_BYTES - size + 1)
        except zlib.error as exc:
            raise InvalidRequest(f"body is not valid gzip: {exc}") from None
        size += len(out)
        if size > limits.MAX_DECODED_BYTES:
            raise PayloadTooLarge(f"body over {limits.MAX_DECODED_BYTES} bytes once decompressed")
        if not inflater.eof:
            raise InvalidRequest("gzip body is truncated")
        parts.append(out)
        data = inflater.unused_data
        if not data:
            return b"".join(parts)


def request_key(request: Request, body_key: str | None = None) -> str | None:
    """The API key from `Authorization: Bearer`, then `?api_key=`, then the JSON body."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    return request.query_params.get("api_key") or body_key or None


def limit_rate(request: Request, key_hash: str) -> None:
    """Spends one of the key's tokens, or answers 429 with the seconds until the next one.

    Keyed by the key's hash, as stored: only valid keys have a bucket, so invented keys cannot
    grow the table.
    """
    limiter = runtime(request).limiter
    if limiter is None:
        return
    wait = limiter.take(key_hash)
    if wait > 0:
        raise RateLimited(f"rate limit of {limiter.rate:g} requests a second for this API key",
                          retry_after_s=limiter.retry_after(wait))


def body_schema(struct: type, description: str, content_types: tuple[str, ...] = ("application/json",)
                ) -> dict[str, Any]:
    """OpenAPI for a body decoded by msgspec (so FastAPI never parses it with pydantic)."""
    # msgspec names a component by its class name, or by its full path when two share a name
    # (both Roboflow report formats have a `Report`): the app's `openapi()` finds the struct by
    # this stand-in and swaps it for the name msgspec chose, so every `$ref` resolves.
    schema = {"$ref": f"{SCHEMA_REF_PREFIX}{struct.__module__}:{struct.__qualname__}"}
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {ct: {"schema": schema} for ct in content_types},
        }
    }


SCHEMA_REF_PREFIX = "msgspec:"


def whole_number(text: str | None, name: str, default: int, high: int, low: int = 1) -> int:
    """A query parameter that is a count (a page size, a number of bins): `default` when absent,
    else a whole number in [low, high], else a 400 that says so."""
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequest(f"{name} must be a whole number") from None
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be between {low} and {high}")
    return value
