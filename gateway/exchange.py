"""One request and its response on an HTTP/1.1 connection: the ASGI receive and send.

The listener's protocol (gateway/listener.py) parses the request and makes an
`Exchange`; the app talks to it through `receive` and `send`. It frames the
response (Content-Length, chunked, HEAD) and refuses what would break the
framing of the connection: a malformed field line, a body longer or shorter
than its Content-Length, a message out of order.

The response head is held until the first body message, so that a small answer
goes out in one socket write; a loop turn later it goes out alone, so a head
whose body is slow to come (a stream) is not held back.
"""

from __future__ import annotations

import asyncio
import http
import re
from collections.abc import Callable, Iterable
from typing import Any

from uvicorn.protocols.http.flow_control import FlowControl

from gateway.types import Message

CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
LAST_CHUNK = b"0\r\n\r\n"
NOT_STARTED = "The app sent {kind} before http.response.start."
NOT_BODY = "The app sent {kind} where http.response.body was expected."
AFTER_COMPLETE = "The app sent {kind} after its response was complete."
BAD_STATUS = "The app answered with status {status}, which is not 100-599."
INTERIM_STATUS = "The app answered with status {status}; a final response is 200-599."
BAD_FIELD = "The app's response headers hold a field name or value HTTP/1.1 cannot carry."
BAD_LENGTH = "The app's Content-Length is not a number: {value!r}."
TWO_LENGTHS = "The app's response has two different Content-Length values."
TWO_FRAMINGS = "The app's response has both Content-Length and chunked Transfer-Encoding."
TOO_LONG = "The app's body is longer than its Content-Length."
TOO_SHORT = "The app's body is shorter than its Content-Length."

# A field name is a token; a value holds no control character but HTAB (RFC 9110 §5.1,
# §5.5). Checked over the whole block of field lines at once: one match, not two a field,
# with a count of its line ends, so that a CR LF inside a value cannot pass as a new line.
_FIELD_LINES = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+: [\t\x20-\x7e\x80-\xff]*\r\n)*")
_NO_BODY = frozenset({204, 304})
_MERGE_LIMIT = 1 << 16  # a body up to this size is copied behind its head: one write


def _status_line(status: int) -> bytes:
    try:
        phrase = http.HTTPStatus(status).phrase.encode()
    except ValueError:
        phrase = b""
    return b"HTTP/1.1 %d %s\r\n" % (status, phrase)


STATUS_LINES = {status: _status_line(status) for status in range(100, 600)}


class Exchange:
    """The ASGI side of one request: its body as it arrives, its response as it leaves."""

    __slots__ = (
        "_bodiless",
        "_chunked",
        "_close_delimited",
        "_date",
        "_head",
        "_on_complete",
        "_read_more",
        "_ready",
        "_remaining",
        "_waiter",
        "body",
        "complete",
        "disconnected",
        "flow",
        "keep_alive",
        "loop",
        "more_body",
        "scope",
        "started",
        "transport",
        "waiting_for_100_continue",
    )

    def __init__(
        self,
        scope: dict[str, Any],
        transport: asyncio.Transport,
        flow: FlowControl,
        loop: asyncio.AbstractEventLoop,
        *,
        keep_alive: bool,
        expect_continue: bool,
        date: bytes,
        on_complete: Callable[[Exchange], None],
        read_more: Callable[[], None],
    ) -> None:
        self.scope = scope
        self.transport = transport
        self.flow = flow
        self.loop = loop
        self.keep_alive = keep_alive
        self.waiting_for_100_continue = expect_continue
        self.disconnected = False
        self.body = bytearray()
        self.more_body = True
        self._ready = False  # the request has news for receive(): body, its end, a close
        self._waiter: asyncio.Future[None] | None = None
        self.started = False
        self.complete = False
        self._head: bytes | None = None
        self._chunked = False
        self._close_delimited = False  # HTTP/1.0 knows no chunks: the close ends the body
        self._remaining = 0
        self._bodiless = scope["method"] == "HEAD"
        self._date = date  # the server's Date field line, as of this second
        self._on_complete = on_complete
        self._read_more = read_more  # the protocol decides whether the socket is read on

    # -- from the protocol --------------------------------------------------------

    def wake(self) -> None:
        """Body arrived, the request ended or the client left: receive() has news."""
        self._ready = True
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    # -- ASGI receive ---------------------------------------------------------------

    async def receive(self) -> Message:
        if self.waiting_for_100_continue and not self.transport.is_closing():
            self.transport.write(CONTINUE)
            self.waiting_for_100_continue = False
        if not self.disconnected and not self.complete:
            self._read_more()
            if not self._ready:
                self._waiter = self.loop.create_future()
                try:
                    await self._waiter
                finally:
                    self._waiter = None
            self._ready = False
        if self.disconnected or self.complete:
            return {"type": "http.disconnect"}
        message = {"type": "http.request", "body": bytes(self.body), "more_body": self.more_body}
        self.body = bytearray()
        return message

    # -- ASGI send ------------------------------------------------------------------

    async def send(self, message: Message) -> None:
        if self.flow.write_paused and not self.disconnected:
            await self.flow.drain()
        if self.disconnected:
            return
        kind = message["type"]
        if not self.started:
            if kind != "http.response.start":
                raise RuntimeError(NOT_STARTED.format(kind=kind))
            self._head = self._start(message["status"], message.get("headers", ()))
            self.started = True
            self.waiting_for_100_continue = False
            self.loop.call_soon(self.flush_head)
            return
        if self.complete:
            raise RuntimeError(AFTER_COMPLETE.format(kind=kind))
        if kind != "http.response.body":
            raise RuntimeError(NOT_BODY.format(kind=kind))
        more = message.get("more_body", False)
        self._write_body(message.get("body", b""), more)
        if not more:
            self._finish()

    def flush_head(self) -> None:
        """Write a head still held (its body has not come within a loop turn)."""
        head = self._head
        if head is not None:
            self._head = None
            if not self.transport.is_closing():
                self.transport.write(head)

    def _write_body(self, body: bytes, more: bool) -> None:
        if self._bodiless:
            data = b""
        elif self._chunked:
            data = b"%x\r\n%b\r\n" % (len(body), body) if body else b""
            if not more:
                data += LAST_CHUNK
        elif self._close_delimited:
            data = body
        else:
            if len(body) > self._remaining:
                raise RuntimeError(TOO_LONG)
            self._remaining -= len(body)
            data = body
        head = self._head
        if head is not None:
            self._head = None
            if len(data) <= _MERGE_LIMIT:
                self.transport.write(head + data)
                return
            self.transport.write(head)
        if data:
            self.transport.write(data)

    def _finish(self) -> None:
        if self._remaining:
            raise RuntimeError(TOO_SHORT)
        self.complete = True
        self.wake()  # a receive() waiting for the client's close returns now
        if not self.keep_alive:
            self.transport.close()
        self._on_complete(self)

    def _start(self, status: int, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The head's bytes; sets the body's framing from the app's headers."""
        line = STATUS_LINES.get(status)
        if line is None:
            raise RuntimeError(BAD_STATUS.format(status=status))
        if status < 200:  # a client reads a 1xx as interim and the body as the response
            raise RuntimeError(INTERIM_STATUS.format(status=status))
        if status in _NO_BODY:  # the response ends with its head (RFC 9112 §6.3)
            self._bodiless = True
        parts: list[bytes] = []
        length: int | None = None
        closing = False
        chunked = False
        for name, value in headers:
            name = name.lower()
            if name == b"content-length":
                if length is not None and _length(value) != length:
                    raise RuntimeError(TWO_LENGTHS)
                length = _length(value)
            elif name == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
            elif name == b"connection" and b"close" in _tokens(value):
                closing = True
            parts += (name, b": ", value, b"\r\n")
        fields = b"".join(parts)
        # Well-formed lines, and as many as fields: a CR LF inside one would add a line.
        if fields.count(b"\n") * 4 != len(parts) or _FIELD_LINES.fullmatch(fields) is None:
            raise RuntimeError(BAD_FIELD)
        if chunked and length is not None:
            raise RuntimeError(TWO_FRAMINGS)
        if closing:
            self.keep_alive = False
        tail = b"" if self.keep_alive or closing else b"connection: close\r\n"
        if chunked:
            self._chunked = True
        elif length is not None:
            self._remaining = 0 if self._bodiless else length  # HEAD: the length a GET has
        elif self._bodiless:
            pass  # the head alone: no framing for a body that never comes
        elif self.scope["http_version"] == "1.0":  # never kept alive (gateway/listener.py)
            self._close_delimited = True
        else:
            self._chunked = True
            tail += b"transfer-encoding: chunked\r\n"
        return line + self._date + fields + tail + b"\r\n"


def _length(value: bytes) -> int:
    if not value.isdigit() or not value.isascii():
        raise RuntimeError(BAD_LENGTH.format(value=value))
    return int(value)


def _tokens(value: bytes) -> list[bytes]:
    return [token.strip().lower() for token in value.split(b",")]


__all__ = ["STATUS_LINES", "Exchange"]
