"""HTTP/1.1 upstreams over a lean keep-alive client: an asyncio protocol and httptools.

aiohttp's ClientSession spends most of its ~100 µs per request on things a proxy does
not use (cookies, redirects, auth, proxies, tracing, header merging). This client
does only what forwarding needs: pooled keep-alive connections, request and response
bodies streamed with back-pressure, connect and per-read timeouts, and every failure
reported as a gateway.proxy.errors.UpstreamError.
"""

from __future__ import annotations

import asyncio
import collections
import math
import time
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import httptools

from gateway.config.models import MAX_RESPONSE_HEADER_BYTES, MAX_RESPONSE_HEADERS
from gateway.proxy.errors import (
    UpstreamConnectError,
    UpstreamError,
    UpstreamHeadersTooLarge,
    UpstreamProtocolError,
    UpstreamTimeout,
)
from gateway.proxy.transport import IDEMPOTENT, UpstreamRequest
from gateway.types import RawHeaders

HIGH_WATER = 1 << 16  # pause reading the upstream with this much body unsent
IDLE_SECONDS = 4.0  # below uvicorn's 5 s keep-alive, so a pooled socket is rarely stale
_FRAMING = frozenset({b"content-length", b"transfer-encoding"})
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
INLINE_BODY = 65536  # a body below this many bytes is copied behind the head: one write
CLOSED_EARLY = "the upstream closed the connection before the response ended"
AFTER_END = "the upstream sent bytes after a complete response"
HEAD_TOO_LARGE = "the upstream's response head exceeds {fields} fields or {size} bytes"
READ_TIMED_OUT = "the upstream did not answer in time"
# The loop's timers may fire this early (uvloop rounds to milliseconds): a read whose
# deadline is this close is out of time rather than given a timer of its own again.
TIMER_SLACK = 0.001


class _Connection(asyncio.Protocol):
    """One upstream connection; parses one response at a time."""

    def __init__(self, key: tuple[str, int]) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self._can_write: asyncio.Future[None] | None = None
        self._loop = asyncio.get_running_loop()
        # One read timer per connection, moved lazily: arming and cancelling a loop timer
        # for every read costs ~2 µs, so a wait only records its deadline, and the timer,
        # when it fires early, sleeps again until that deadline (see _on_timer).
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf  # when the armed timer fires; inf: none armed
        # The parser ended a final response and waits at the start of the next message:
        # the next request reuses it. Never after HEAD, whose body the parser still awaits.
        self.parser_idle = False
        self._reset(head=False)

    def _reset(
        self,
        head: bool,
        max_fields: int = MAX_RESPONSE_HEADERS,
        max_head_bytes: int = MAX_RESPONSE_HEADER_BYTES,
    ) -> None:
        if not self.parser_idle:
            self.parser = httptools.HttpResponseParser(self)
        self.parser_idle = False
        self.head = head
        self.max_fields = max_fields
        self.max_head_bytes = max_head_bytes
        self.fields_left = max_fields
        self.head_bytes_left = max_head_bytes  # less what arrived until the head was complete
        self.status = 0
        self.headers: RawHeaders = []
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self.started = False  # any response byte arrived
        self.headers_done = False
        self.complete = False
        self.keep_alive = True
        self.has_length = False
        self.error: Exception | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.paused = False

    # -- asyncio.Protocol ----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.complete:
            # Nothing may follow a complete response (RFC 9112 §6.3): not on an idle
            # pooled connection, not as a body of HEAD, 204 or 304. Such bytes could
            # pass for the answer to the next request, so the connection is retired.
            self._fail(UpstreamProtocolError(AFTER_END))
            return
        self.started = True
        in_head = not self.headers_done
        if in_head:
            self.head_bytes_left -= len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            # Our callbacks raise UpstreamErrors to stop the parser where it stands.
            cause = exc.__context__
            self._fail(cause if isinstance(cause, UpstreamError) else UpstreamProtocolError(exc))
        except httptools.HttpParserUpgrade:
            self._fail(UpstreamProtocolError("the upstream switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(UpstreamProtocolError(f"invalid upstream response: {exc}"))
        if in_head and self.head_bytes_left < 0 and self.error is None and self._head_too_large():
            self._fail(self._too_large())

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._disarm()
        if self.headers_done and not self.complete and not self.has_length:
            self.complete = True  # a body delimited by the end of the connection
            self._wake()
        elif not self.complete:
            self._fail(UpstreamProtocolError(CLOSED_EARLY))
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_exception(UpstreamProtocolError(CLOSED_EARLY))

    def pause_writing(self) -> None:
        self._can_write = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)
        self._can_write = None

    # -- httptools callbacks ---------------------------------------------------------

    def on_message_begin(self) -> None:
        if self.headers_done:  # a second response in the same read
            raise UpstreamProtocolError(AFTER_END)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self.headers_done:
            return  # a trailer field (chunked body): not forwarded; the head is frozen
        self.fields_left -= 1
        if self.fields_left < 0:
            raise self._too_large()
        name = name.lower()
        if name in _FRAMING:
            self.has_length = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # interim (100 Continue...): wait for the final one
            self.headers = []
            self.has_length = False
            return
        self.status = status
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True
        if self._can_write is not None and not self._can_write.done():
            self._can_write.set_result(None)  # an early answer ends a stalled upload
        if self.head or status in (204, 304):
            self.complete = True  # no body, whatever the headers say
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.complete:  # a body on a response to HEAD
            raise UpstreamProtocolError(AFTER_END)
        self.chunks.append(body)
        self.buffered += len(body)
        if self.buffered > HIGH_WATER and not self.paused and self.transport is not None:
            self.paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self.headers_done:
            self.complete = True
            self.parser_idle = not self.head
            self._wake()

    # -- used by the transport -------------------------------------------------------

    def _head_too_large(self) -> bool:
        """Called once more bytes arrived than a head may have: was it the head?"""
        if not self.headers_done:
            return True  # even one field without an end: the parser keeps it all in memory
        # The head ended in this read, perhaps with body bytes after it: count exactly.
        size = sum(len(name) + len(value) + 4 for name, value in self.headers)
        return size > self.max_head_bytes

    def _too_large(self) -> UpstreamHeadersTooLarge:
        return UpstreamHeadersTooLarge(
            HEAD_TOO_LARGE.format(fields=self.max_fields, size=self.max_head_bytes)
        )

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    def _fail(self, error: Exception) -> None:
        if self.error is None:
            self.error = error
        self.closed = True  # at once: the pool must not hand it out before connection_lost
        if self.transport is not None:
            self.transport.close()
        self._wake()
        self._disarm()

    def expect(self, seconds: float) -> asyncio.Future[None]:
        """A future done when something arrives, the connection fails or `seconds` pass.

        Await it, then check `error` (the timeout is one: UpstreamTimeout). A plain future
        rather than a coroutine: one frame fewer on every read of the hot path.
        """
        self.waiter = waiter = self._loop.create_future()
        self._deadline = deadline = self._loop.time() + seconds
        if deadline < self._timer_at:
            self._arm(deadline)
        return waiter

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._loop.call_at(when, self._on_timer)
        self._timer_at = when

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = math.inf

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        waiter = self.waiter
        if waiter is None or waiter.done():
            return  # nobody waits (idle, or woken already): the next read arms it again
        if self._loop.time() >= self._deadline - TIMER_SLACK:
            self._fail(UpstreamTimeout(READ_TIMED_OUT))
        else:  # armed for an earlier read; this one's deadline is later
            self._arm(self._deadline)

    async def write_stream(self, body: AsyncIterator[bytes], chunked: bool, seconds: float) -> None:
        assert self.transport is not None
        async for chunk in body:
            if self.headers_done:
                # The upstream answered before the body ended (413, 401...): stop
                # sending, pass its answer on, and do not reuse the connection.
                self.keep_alive = False
                return
            if self.error is not None:
                raise self.error
            if chunk:
                self.transport.write(b"%x\r\n%b\r\n" % (len(chunk), chunk) if chunked else chunk)
            if self._can_write is not None:
                await self._drain(self._can_write, seconds)
        if chunked and not self.headers_done:
            self.transport.write(b"0\r\n\r\n")

    async def _drain(self, can_write: asyncio.Future[None], seconds: float) -> None:
        try:
            await asyncio.wait_for(asyncio.shield(can_write), seconds)
        except TimeoutError:
            if not self.headers_done:
                error = UpstreamTimeout("the upstream stopped reading the request body")
                self._fail(error)
                raise error from None
        except UpstreamProtocolError:
            if not self.headers_done:  # closed after answering: the answer still counts
                raise

    def take(self) -> bytes | None:
        if not self.chunks:
            return None
        chunk = self.chunks.popleft()
        self.buffered -= len(chunk)
        if self.paused and self.buffered <= HIGH_WATER // 4 and self.transport is not None:
            self.paused = False
            self.transport.resume_reading()
        return chunk

    def close(self) -> None:
        self.closed = True
        self._disarm()
        if self.transport is not None:
            self.transport.close()


class H1Response:
    __slots__ = ("_conn", "_read_timeout", "_transport", "headers", "status")

    def __init__(self, transport: H1Transport, conn: _Connection, read_timeout: float) -> None:
        self._transport = transport
        self._conn = conn
        self._read_timeout = read_timeout
        self.status = conn.status
        self.headers = conn.headers

    def buffered_body(self) -> bytes | None:
        """The whole body when all of it has arrived already (b"" for none), else None."""
        conn = self._conn
        if not conn.complete or conn.error is not None:
            return None
        chunks = conn.chunks
        if len(chunks) > 1:
            return b"".join([conn.take() or b"" for _ in range(len(chunks))])
        return conn.take() or b""

    async def iter_body(self) -> AsyncIterator[bytes]:
        conn = self._conn
        while True:
            chunk = conn.take()
            if chunk is not None:
                yield chunk
                continue
            if conn.error is not None:  # before `complete`: bytes after the end count
                raise conn.error
            if conn.complete:
                return
            await conn.expect(self._read_timeout)
            if conn.error is not None:
                raise conn.error

    async def aclose(self) -> None:
        conn = self._conn
        if conn.complete and not conn.chunks and conn.keep_alive and conn.error is None:
            self._transport._release(conn)
        else:
            conn.close()


class _Target:
    """An upstream base URL, parsed once: where to connect and the request's fixed bytes."""

    __slots__ = ("key", "prefix", "tail")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UpstreamConnectError(f"unsupported upstream URL {url!r}")
        self.key = (parts.hostname, parts.port or 80)
        self.prefix = parts.path  # prepended to every request's path
        # What follows the request target: the version and the Host field.
        self.tail = b" HTTP/1.1\r\nhost: " + parts.netloc.encode() + b"\r\n"


class H1Transport:
    """Pooled keep-alive HTTP/1.1 connections to every http:// upstream; no TLS."""

    def __init__(self, max_idle_per_host: int = 256) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._max_idle = max_idle_per_host
        self._targets: dict[str, _Target] = {}

    def _target(self, url: str) -> _Target:
        found = self._targets.get(url)
        if found is None:
            found = self._targets[url] = _Target(url)
        return found

    async def send(self, request: UpstreamRequest) -> H1Response:
        target = self._target(request.target)
        head, chunked = self._head(request, target)
        head_only = request.method == "HEAD"
        conn = self._pooled(target.key)
        reused = conn is not None
        if conn is None:
            conn = await self._connect(target.key, request.connect_timeout)
        conn._reset(head_only, request.max_response_headers, request.max_response_header_bytes)
        try:
            await self._exchange(conn, head, chunked, request)
        except UpstreamProtocolError:
            conn.close()
            # A pooled socket the upstream had already closed: once more on a new one.
            replayable = not isinstance(request.body, AsyncIterator)
            if not (reused and not conn.started and replayable and request.method in IDEMPOTENT):
                raise
            conn = await self._connect(target.key, request.connect_timeout)
            conn._reset(head_only, request.max_response_headers, request.max_response_header_bytes)
            try:
                await self._exchange(conn, head, chunked, request)
            except BaseException:
                conn.close()
                raise
        except BaseException:
            conn.close()
            raise
        return H1Response(self, conn, request.read_timeout)

    @staticmethod
    def _head(request: UpstreamRequest, target: _Target) -> tuple[bytes, bool]:
        """The request line and headers (with a small body after them), and whether the
        body goes chunked. One buffer, so the request leaves in one write."""
        method = request.method
        parts = [f"{method} {target.prefix}{request.path_qs}".encode("latin-1"), target.tail]
        length = None
        chunked = False
        for name, value in request.headers:
            if name in _FRAMING:
                if name == b"content-length":
                    length = value
            else:
                parts += (name, b": ", value, b"\r\n")
        body = request.body
        if isinstance(body, bytes):
            parts.append(b"content-length: %d\r\n\r\n" % len(body))
            if len(body) < INLINE_BODY:
                parts.append(body)
            return b"".join(parts), False
        if body is not None and length is not None:
            parts += (b"content-length: ", length, b"\r\n")  # streamed as it is
        elif body is not None:
            parts.append(b"transfer-encoding: chunked\r\n")
            chunked = True
        elif method in _BODY_METHODS:
            parts.append(b"content-length: 0\r\n")
        parts.append(b"\r\n")
        return b"".join(parts), chunked

    @staticmethod
    async def _exchange(
        conn: _Connection, head: bytes, chunked: bool, request: UpstreamRequest
    ) -> None:
        assert conn.transport is not None
        conn.transport.write(head)
        body = request.body
        if body is not None:
            if isinstance(body, bytes):
                if len(body) >= INLINE_BODY:  # a small body went with the head
                    conn.transport.write(body)
            else:
                await conn.write_stream(body, chunked, request.read_timeout)
        while not conn.headers_done and conn.error is None:
            await conn.expect(request.read_timeout)
        if conn.error is not None:  # also what followed the head in the same read
            raise conn.error

    def _pooled(self, key: tuple[str, int]) -> _Connection | None:
        """An idle connection to `key` still fit for a request, if there is one."""
        idle = self._idle.get(key)
        if idle:
            now = time.monotonic()
            while idle:
                conn = idle.pop()
                if conn.closed or now - conn.idle_since > IDLE_SECONDS:
                    conn.close()
                    continue
                return conn
        return None

    async def _connect(self, key: tuple[str, int], connect_timeout: float) -> _Connection:
        loop = asyncio.get_running_loop()
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: _Connection(key), key[0], key[1]),
                connect_timeout,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"connecting to {key[0]}:{key[1]} timed out") from exc
        except OSError as exc:
            raise UpstreamConnectError(f"cannot connect to {key[0]}:{key[1]}: {exc}") from exc
        return conn

    def _release(self, conn: _Connection) -> None:
        if conn.closed:
            return
        idle = self._idle.get(conn.key)
        if idle is None:
            idle = self._idle[conn.key] = []
        if len(idle) >= self._max_idle:
            conn.close()
            return
        conn.idle_since = time.monotonic()
        idle.append(conn)

    def close_idle(self, target: str) -> None:
        """Close the idle connections to `target`'s host and port (no pool uses it now)."""
        key = self._target(target).key
        for conn in self._idle.pop(key, []):
            conn.close()

    async def aclose(self) -> None:
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
