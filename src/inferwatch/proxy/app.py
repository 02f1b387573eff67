"""The transparent proxy: an ASGI app that forwards every request to an inference server and
records the inference answers on their way back.

Forwarding is exact: method, path (as sent, percent-encoding and all), query string, headers and
body go to the upstream, and its status, headers and body come back, both streamed. Only
hop-by-hop headers (RFC 9110 §7.6.1) stop at the proxy, as they describe one connection, not the
message. The one change ever made to an answer: an inference result without `inference_id` gets
one, so the caller can attach metadata to it; that answer is re-encoded with a new length.

An inference answer is read whole (they are small JSON) before it is returned, since an id may
have to be added; everything else streams chunk by chunk. Recording happens after the last byte
of the answer is handed to the server, and only queues (see recorder.py), so it never delays an
answer, and any fault in it is logged and swallowed.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from collections.abc import AsyncIterator

import httpx
import msgspec
from starlette.types import Message, Receive, Scope, Send

from inferwatch.proxy.recognize import Found, Route, answer_results, request_facts, route_of
from inferwatch.proxy.recorder import Record, Recorder

log = logging.getLogger("inferwatch.proxy")

# Headers about the connection, not the message (RFC 9110 §7.6.1), plus `host` (the upstream's
# own) and `expect` (the server in front already answered 100-continue).
HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"proxy-connection",
    b"te", b"trailer", b"trailers", b"transfer-encoding", b"upgrade",
})
_REQUEST_ONLY = frozenset({b"host", b"expect"})

DEFAULT_MAX_RECORD_BYTES = 64 * 1024 * 1024
DEVICE_HEADER = b"x-device-id"


class _ClientGone(Exception):
    """The caller disconnected while its request body was being forwarded."""


def _connection_listed(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Headers a `Connection: a, b` header makes hop-by-hop for this one message."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b",") if token.strip())
    return named


def _end_to_end(headers: list[tuple[bytes, bytes]], drop: frozenset[bytes] = frozenset()) -> list[tuple[bytes, bytes]]:
    skip = HOP_BY_HOP | drop | _connection_listed(headers)
    return [(name, value) for name, value in headers if name.lower() not in skip]


def _content_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The declared body length: 0 when the request has no body, None when it is chunked (or
    the length is unreadable: then the body streams and the upstream judges it)."""
    length = 0
    for name, value in headers:
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            return None
        if lowered == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return None
    return length


def _relative(scope: Scope) -> tuple[str, bytes]:
    """The request's path below where the proxy is mounted: decoded (to recognise routes) and
    as sent (to forward)."""
    path: str = scope["path"]
    raw: bytes = scope.get("raw_path") or path.encode()
    root: str = scope.get("root_path", "")
    if root:
        if path.startswith(root):
            path = path[len(root):]
        if raw.startswith(root.encode()):
            raw = raw[len(root.encode()):]
    return path or "/", raw or b"/"


def _error(status: int, error: str, detail: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    body = msgspec.json.encode({"error": error, "detail": detail})
    return status, [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())], body


def _decoded(body: bytes, encoding: str) -> bytes | None:
    """The answer's JSON bytes under its Content-Encoding (identity, gzip, deflate), else None."""
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompress(body, wbits=31)
    if encoding == "deflate":
        try:
            return zlib.decompress(body)
        except zlib.error:
            return zlib.decompress(body, wbits=-15)
    return None


class Proxy:
    """`Proxy(upstream, recorder)` is an ASGI app; run it alone (`inferwatch proxy`) or mount it
    in the server (`inferwatch serve --proxy-upstream`).

    `own_server_headers`: the server in front adds its own `date` and `server` headers (uvicorn
    does when mounted in inferwatch), so the upstream's are dropped rather than doubled.
    """

    def __init__(self, upstream: str, recorder: Recorder, *, own_server_headers: bool = False,
                 connect_timeout_s: float = 10.0, read_timeout_s: float | None = 600.0,
                 max_record_bytes: int = DEFAULT_MAX_RECORD_BYTES) -> None:
        self.upstream = upstream.rstrip("/")
        self.recorder = recorder
        self.counters = recorder.counters
        self.max_record_bytes = max_record_bytes
        self._drop_response = frozenset({b"date", b"server"}) if own_server_headers else frozenset()
        self._timeout = httpx.Timeout(connect=connect_timeout_s, read=read_timeout_s, write=read_timeout_s,
                                      pool=None)
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        """One pooled client, made on the event loop that uses it (the first request's)."""
        if self._client is None:
            client = httpx.AsyncClient(
                timeout=self._timeout, follow_redirects=False, trust_env=False,
                limits=httpx.Limits(max_connections=None, max_keepalive_connections=200, keepalive_expiry=30),
            )
            # httpx adds its own User-Agent, Accept and Accept-Encoding when the caller sent none;
            # the upstream must see the caller's headers only.
            for name in ("user-agent", "accept", "accept-encoding"):
                del client.headers[name]
            self._client = client
        return self._client

    async def aclose(self) -> None:
        """Closes the upstream connections, then the recorder (flushing what it still holds)."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await asyncio.to_thread(self.recorder.close)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._forward(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "websocket":  # the inference server's HTTP API has none to pass on
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _forward(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.time()
        method: str = scope["method"]
        path, raw_path = _relative(scope)
        query: bytes = scope.get("query_string", b"")
        route = route_of(method, path)
        headers = _end_to_end(scope["headers"], _REQUEST_ONLY)
        length = _content_length(scope["headers"])
        has_body = length != 0
        # The body of a v1 or workflow request is kept (up to a bound) for its model id and key.
        kept: list[bytes] | None = [] if route is not None and route.kind != "legacy" else None
        url = self.upstream + raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
        self.counters.forwarded += 1
        try:
            content: bytes | AsyncIterator[bytes] | None = None
            if route is not None and length is not None and 0 < length <= self.max_record_bytes:
                # An inference request (an image, some kB to a few MB) goes on in one write once
                # it is all here: chunk by chunk, each write may hand the CPU to the upstream.
                content = b"".join([chunk async for chunk in self._body(receive, None)])
                if kept is not None:
                    kept.append(content)
            elif has_body:
                content = self._body(receive, kept)
            request = self._http().build_request(method, url, headers=headers, content=content)
            response = await self._http().send(request, stream=True)
        except _ClientGone:
            return
        except httpx.HTTPError as exc:
            await self._upstream_failed(send, exc)
            return
        try:
            content_type = response.headers.get("content-type", "")
            if route is not None and response.status_code == 200 and content_type.startswith("application/json"):
                found = await self._send_inference(send, response, route)
                if found:
                    self._record(scope, route, query, kept, found, started)
            else:
                await self._send_streamed(send, response)
        except httpx.HTTPError as exc:  # the upstream broke off mid-answer: so must we
            self.counters.upstream_errors += 1
            log.warning("proxy: the inference server broke off its answer to %s %s: %s", method, path, exc)
        finally:
            await response.aclose()

    async def _upstream_failed(self, send: Send, exc: Exception) -> None:
        """502 when the upstream cannot be reached (refused, no route, connect timeout), 504 when
        it took the request but did not answer in time: a JSON error that says which."""
        self.counters.upstream_errors += 1
        if isinstance(exc, httpx.TimeoutException) and not isinstance(exc, httpx.ConnectTimeout):
            await self._send_whole(send, *_error(504, "Gateway timeout",
                                                 f"the inference server at {self.upstream} did not answer in time"
                                                 f" ({type(exc).__name__})"))
            return
        await self._send_whole(send, *_error(502, "Bad gateway",
                                             f"the inference server at {self.upstream} is unreachable:"
                                             f" {type(exc).__name__}: {exc}"))

    async def _body(self, receive: Receive, kept: list[bytes] | None) -> AsyncIterator[bytes]:
        """The caller's body as it arrives, passed on chunk by chunk (and copied into `kept`)."""
        size = 0
        while True:
            message: Message = await receive()
            if message["type"] == "http.disconnect":
                raise _ClientGone
            chunk: bytes = message.get("body", b"")
            if chunk:
                if kept is not None:
                    size += len(chunk)
                    if size <= self.max_record_bytes:
                        kept.append(chunk)
                    else:
                        kept.clear()
                yield chunk
            if not message.get("more_body", False):
                return

    async def _send_whole(self, send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})

    def _response_headers(self, response: httpx.Response) -> list[tuple[bytes, bytes]]:
        return _end_to_end(list(response.headers.raw), self._drop_response)

    async def _send_streamed(self, send: Send, response: httpx.Response,
                             first: list[bytes] | None = None) -> None:
        await send({"type": "http.response.start", "status": response.status_code,
                    "headers": self._response_headers(response)})
        for chunk in first or ():
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        async for chunk in response.aiter_raw():
            if chunk:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _send_inference(self, send: Send, response: httpx.Response, route: Route) -> list[Found]:
        """Returns an inference answer, with an id added where a result had none, and gives back
        its results for recording. An answer we cannot read (too big, not JSON, an unknown
        encoding) goes back exactly as it came, unrecorded."""
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in response.aiter_raw():
                chunks.append(chunk)
                size += len(chunk)
                if size > self.max_record_bytes:
                    await self._send_streamed(send, response, chunks)
                    return []
        except httpx.HTTPError as exc:
            if size <= self.max_record_bytes:  # nothing has gone out yet: the caller can be told
                await self._upstream_failed(send, exc)
                return []
            raise
        body = b"".join(chunks)
        headers = self._response_headers(response)
        found: list[Found] = []
        try:
            decoded = _decoded(body, response.headers.get("content-encoding", "").strip().lower())
            if decoded is not None:
                answer = msgspec.json.decode(decoded)
                found, changed = answer_results(route, answer)
                if changed:
                    body = msgspec.json.encode(answer)
                    headers = [(k, v) for k, v in headers if k.lower() not in (b"content-length", b"content-encoding")]
                    headers.append((b"content-length", str(len(body)).encode()))
        except Exception:  # an answer we cannot read is still the caller's answer
            log.debug("proxy: could not read an inference answer", exc_info=True)
        await self._send_whole(send, response.status_code, headers, body)
        return found

    def _record(self, scope: Scope, route: Route, query: bytes, kept: list[bytes] | None, found: list[Found],
                started: float) -> None:
        """Hands the answer's results to the recorder; runs after the answer went out."""
        try:
            authorization = device = None
            for name, value in scope["headers"]:
                lowered = name.lower()
                if lowered == b"authorization":
                    authorization = value.decode("latin-1")
                elif lowered == DEVICE_HEADER:
                    device = value.decode("latin-1").strip() or None
            if device is None and scope.get("client"):
                device = str(scope["client"][0])
            facts = request_facts(route, query, b"".join(kept) if kept else None, authorization)
            for group in found:  # a v1 answer names no model: the request's body does
                group.model_id = group.model_id or facts.model_id
            self.recorder.record(Record(found, facts, device, started))
        except Exception:  # recording must never fail a request, nor the proxy
            log.warning("proxy: could not record an inference", exc_info=True)
