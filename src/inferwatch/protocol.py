"""uvicorn's httptools protocol with deadlines for reading a request (slow-loris clients).

uvicorn closes a connection idle between requests after `timeout_keep_alive`, but sets no deadline
while a request arrives: a client that trickles its headers or body a byte at a time holds a
connection, and the memory of a half-read request, for as long as it likes. Here a request's
headers must arrive within `header_timeout` (counted from the connection's opening for its first
request, from the first byte for later ones) and its body within `body_timeout` of the headers;
past either the server answers 408 and closes the connection. The time the application takes to
answer (waiting for the writer's commit) is not counted.

uvicorn offers neither deadline: `timeout_keep_alive` only runs between requests, and its h11
protocol bounds the size of incomplete headers, not their time. `inferwatch serve` always runs
this httptools-based protocol.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

_BODY = b'{"error":"Request timeout","detail":"the request did not arrive in time"}'
_TIMEOUT_RESPONSE = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
    b"content-length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
)


class DeadlineProtocol(HttpToolsProtocol):
    """HttpToolsProtocol whose requests must arrive within a deadline (set by `with_deadlines`)."""

    header_timeout: float = 10.0
    body_timeout: float = 60.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._timed_out)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _timed_out(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.transport.get_protocol() is not self:
            return  # closed already, or handed to a WebSocket protocol
        # A response already under way (say, a 401 sent before the body was read) is left whole.
        if self.cycle is None or self.cycle.response_complete or not self.cycle.response_started:
            self.transport.write(_TIMEOUT_RESPONSE)
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._deadline is None:  # a later request on a kept-alive connection
            self._arm(self.header_timeout)

    def on_headers_complete(self) -> None:
        super().on_headers_complete()
        self._arm(self.body_timeout)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def with_deadlines(header_timeout: float, body_timeout: float) -> type[DeadlineProtocol]:
    """The protocol class to hand uvicorn (`http=`), with these deadlines in seconds."""
    return type("DeadlineProtocol", (DeadlineProtocol,),
                {"header_timeout": header_timeout, "body_timeout": body_timeout})
