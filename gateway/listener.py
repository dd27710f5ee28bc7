"""The public listener's HTTP/1.1 protocol: httptools' parser with the edge's limits.

uvicorn serves (sockets, workers, signals, lifespan); this protocol replaces its
httptools protocol. Measured with raw sockets against uvicorn 0.54 + httptools 0.9
(see docs/policies-edge.md), uvicorn's has no deadline for receiving headers, no
limit on the size of the header block or the URL, and a `limit_concurrency` that
counts idle keep-alive connections and answers 503 without Retry-After. This one:

- gives a request's headers a deadline from its first byte (and a new connection
  one from its opening) → 408 and close; idle keep-alive connections are closed
  after `keep_alive_timeout`;
- caps the header block (431) and the request target (414) as the parser delivers
  them, and the bytes it buffers before a header line ends, so memory is bounded
  before the headers end;
- caps requests in progress on this listener → 503 + Retry-After;
- answers pipelined requests in order, reading no further while any wait their
  turn, and a refusal of a pipelined request only after the responses before it;
- ends a request whose body the parser rejects, rather than leave its app waiting.

Both deadlines live in one timer per connection that is re-armed lazily: a busy
connection moves its deadline with a float store, and the timer, when it fires
early, sets itself for the deadline now due. Errors written here are problem+json
like every other error; they close the connection because the rest of the request
was never read.
"""

from __future__ import annotations

import asyncio
import json
import logging
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT, FlowControl
from uvicorn.protocols.utils import get_local_addr, get_remote_addr, is_ssl
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from uvicorn.server import ServerState

from gateway.config.models import ListenerConfig
from gateway.exchange import Exchange
from gateway.problem import INTERNAL_ERROR, TITLES, ProblemResponse
from gateway.tls import tls_extension
from gateway.types import Receive, Scope, Send

HEADERS_TOO_LARGE = "The request's header fields exceed {limit} bytes."
URL_TOO_LONG = "The request target exceeds {limit} bytes."
HEADERS_TOO_SLOW = "The request's headers did not arrive within {limit:g} seconds."
BODY_TOO_SLOW = "The request's body did not arrive within {limit:g} seconds."
SATURATED = "The gateway is handling as many requests as it may; retry in {retry} s."
INVALID_REQUEST = "The request is not valid HTTP/1.1."
QUEUE_TOO_DEEP = "More than {limit} requests were sent ahead of their responses."
UPGRADE_BEHIND_REQUEST = "A WebSocket upgrade cannot be pipelined behind another request."
APP_FAILED = "Exception in ASGI application"

_LOG = logging.getLogger("uvicorn.error")
_ASGI = {"version": "3.0", "spec_version": "2.3"}
# Requests a connection may queue behind the one running. Each costs about 1 KB (scope,
# exchange) for a few dozen bytes on the wire: one 128 KB read of tiny requests queued
# 7,000 of them, 7 MB a connection. Browsers and clients do not pipeline this deep.
_MAX_QUEUED = 128
# What the connection waits for, which gives its deadline a meaning: a request's head, its
# body, nothing (the app is answering), or the next request on an idle connection.
_HEADERS, _BODY, _ACTIVE, _IDLE = range(4)


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; `_refusal` says why."""


def _raw_problem(status: int, detail: str) -> bytes:
    body = json.dumps(
        {"type": "about:blank", "title": TITLES[status], "status": status, "detail": detail},
        separators=(",", ":"),
    ).encode()
    return (
        f"HTTP/1.1 {status} {TITLES[status]}\r\n"
        "content-type: application/problem+json\r\n"
        f"content-length: {len(body)}\r\n"
        "cache-control: no-store\r\n"
        "connection: close\r\n\r\n"
    ).encode() + body


_CRASHED = _raw_problem(500, INTERNAL_ERROR)


class _DateLine:
    """The server's Date field line; uvicorn replaces its list once a second."""

    def __init__(self) -> None:
        self._source: object = None
        self._line = b""

    def __call__(self, headers: list[tuple[bytes, bytes]]) -> bytes:
        if headers is not self._source:
            self._source = headers
            self._line = b"".join(b"%s: %s\r\n" % (name, value) for name, value in headers)
        return self._line


class EdgeProtocol(asyncio.Protocol):
    limits: ListenerConfig = ListenerConfig.model_validate({})
    _busy: Any = None
    _on_refused: Any = None  # called with the status of each refusal (metrics)

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        if not config.loaded:
            config.load()
        self.config = config
        self.app = config.loaded_app
        self.loop = _loop or asyncio.get_event_loop()
        self.server_state = server_state
        # uvicorn's server closes these at shutdown; its set is typed for its own protocols.
        self.connections: set[Any] = server_state.connections
        self.tasks = server_state.tasks
        self.app_state = app_state
        self.keep_alive_timeout = float(config.timeout_keep_alive)
        self.root_path = config.root_path
        self.parser = httptools.HttpRequestParser(self)
        # Answer a request whose client sends bytes after its Connection: close.
        self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self.pipeline: deque[Exchange] = deque()
        self.cycle: Exchange | None = None
        self._date = _DateLine()
        # per request, while its head is parsed
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.scope: dict[str, Any] = {}
        self._expect_continue = False
        self._head_bytes = 0
        self._raw_head = 0
        self._in_head = False
        # this read began a head after a message ended: the bytes before it are not the head's
        self._head_began = False
        self._message_ended = False
        self._upgrading = False  # a WebSocket handshake: its body is the WebSocket's
        self._refusal: tuple[int, str] | None = None
        # the connection's one deadline
        self._waiting = _HEADERS
        self._deadline: float | None = None
        self._timer: asyncio.TimerHandle | None = None

    # -- connection -------------------------------------------------------------

    def connection_made(self, transport: Any) -> None:
        self.connections.add(self)
        self.transport = transport
        self.flow = FlowControl(transport)
        https = is_ssl(transport)
        self._base: dict[str, Any] = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": "1.1",
            "server": get_local_addr(transport),
            "client": get_remote_addr(transport),
            "scheme": "https" if https else "http",
            "root_path": self.root_path,
        }
        # TLS: the ASGI TLS extension (the verified client certificate, for mTLS), once
        # per connection; uvicorn's protocols do not put it in the scope.
        if https:
            self._base["extensions"] = {"tls": tls_extension(transport)}
        self._expect(_HEADERS, self.limits.header_timeout)  # a silent client gets 408

    def connection_lost(self, exc: Exception | None) -> None:
        self.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadline = None
        cycle = self.cycle
        if cycle is not None:
            if not cycle.complete:
                cycle.disconnected = True
            cycle.wake()
        for queued in self.pipeline:
            queued.disconnected = True
        self.pipeline.clear()
        self.flow.resume_writing()
        if exc is None:
            self.transport.close()

    def eof_received(self) -> None:
        pass

    def shutdown(self) -> None:
        """The server stops: close an idle connection, finish the request in progress."""
        if self.cycle is None or self.cycle.complete:
            self.transport.close()
        else:
            self.cycle.keep_alive = False

    def pause_writing(self) -> None:
        self.flow.pause_writing()

    def resume_writing(self) -> None:
        self.flow.resume_writing()

    # -- the deadline ---------------------------------------------------------------

    def _expect(self, waiting: int, seconds: float) -> None:
        """Wait for `waiting` until `seconds` from now; the timer follows lazily."""
        deadline = self.loop.time() + seconds
        self._waiting = waiting
        self._deadline = deadline
        timer = self._timer
        if timer is None:
            self._timer = self.loop.call_at(deadline, self._on_deadline)
        elif timer.when() > deadline:
            timer.cancel()
            self._timer = self.loop.call_at(deadline, self._on_deadline)

    def _on_deadline(self) -> None:
        self._timer = None
        deadline = self._deadline
        if deadline is None or self.transport.is_closing():
            return
        if self.loop.time() < deadline:  # moved on since the timer was set
            self._timer = self.loop.call_at(deadline, self._on_deadline)
            return
        if self._waiting == _HEADERS:
            self._refuse(408, HEADERS_TOO_SLOW.format(limit=self.limits.header_timeout))
        elif self._waiting == _BODY:
            self._body_too_slow()
        else:
            self.transport.close()

    def _body_too_slow(self) -> None:
        """The running request's body is late: 408 if nothing was answered yet, and close;
        its app sees http.disconnect."""
        cycle = self.cycle
        if cycle is not None and not cycle.started:
            self.transport.write(
                _raw_problem(408, BODY_TOO_SLOW.format(limit=self.limits.body_timeout))
            )
            if self._on_refused is not None:
                self._on_refused(408)
        self.transport.close()

    def _expect_body(self) -> None:
        """Put the running request's unfinished body on the clock (once: a whole-body
        deadline), unless its client still waits for 100 Continue."""
        cycle = self.cycle
        if (
            self._waiting == _ACTIVE
            and cycle is not None
            and cycle.more_body
            and not cycle.complete
            and not cycle.waiting_for_100_continue
        ):
            self._expect(_BODY, self.limits.body_timeout)

    def _busy_with_app(self) -> bool:
        return self.cycle is not None and not self.cycle.complete

    # -- bytes in ---------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        # An idle connection keeps its deadline until a head begins (_head_pending): bytes
        # that start no request (CR LF, the rest of an answered request's body) are no
        # reason to keep it open.
        self._head_began = self._message_ended = False
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgrade()
            return
        except httptools.HttpParserError:
            self._parse_failed()
            return
        if self._in_head and not self.transport.is_closing():
            # A head that began behind a message in this read: the read's bytes are mostly
            # that message's, and at most one read of the head goes uncounted.
            behind_a_message = self._head_began and self._message_ended
            self._head_pending(0 if behind_a_message else len(data))
        elif self.cycle is not None and self.cycle.more_body:
            self._expect_body()

    def _parse_failed(self) -> None:
        """Refuse the request the parser failed on; one failed inside its body ends here."""
        status, detail = self._refusal or (400, INVALID_REQUEST)
        broken = self._receiving()
        if broken is None or not broken.more_body:  # a head failed: refused in its turn
            self._refuse(status, detail)
        elif broken is not self.cycle:  # queued: it never runs, its refusal answers it
            self.pipeline.pop()
            self._refuse(status, detail)
        else:  # running: its app waits for a body that never comes, so it ends now
            if not broken.started:
                self.transport.write(_raw_problem(status, detail))
                if self._on_refused is not None:
                    self._on_refused(status)
            self.transport.close()

    def _head_pending(self, received: int) -> None:
        """A head is still incomplete after a read: bound its bytes and its time."""
        self._raw_head += received
        # httptools hands a header over only once it is complete: bound what it buffers.
        limit = self.limits.max_header_bytes + self.limits.max_url_bytes + 64
        if self._raw_head > limit:
            self._refuse(431, HEADERS_TOO_LARGE.format(limit=self.limits.max_header_bytes))
        elif self._waiting != _HEADERS and not self._busy_with_app():
            self._expect(_HEADERS, self.limits.header_timeout)

    def _refuse(self, status: int, detail: str) -> None:
        """Answer the request being parsed with an error and close, after those before it."""
        if self._busy_with_app() or self.pipeline:
            self._refusal = (status, detail)
            self._deadline = None
            self.flow.pause_reading()  # the rest waits; it is answered once its turn comes
            return
        self._deadline = None
        self.transport.write(_raw_problem(status, detail))
        self.transport.close()
        if self._on_refused is not None:
            self._on_refused(status)

    # -- parser callbacks -------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_began = True
        self._upgrading = False
        self._raw_head = 0
        self._head_bytes = 0
        self._expect_continue = False
        self.url = b""
        self.headers = []
        self.scope = {**self._base, "headers": self.headers, "state": self.app_state.copy()}

    def on_url(self, url: bytes) -> None:
        self.url += url
        if len(self.url) > self.limits.max_url_bytes:
            self._refusal = (414, URL_TOO_LONG.format(limit=self.limits.max_url_bytes))
            raise _Refused()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (431, HEADERS_TOO_LARGE.format(limit=self.limits.max_header_bytes))
            raise _Refused()
        name = name.lower()
        # llhttp keeps trailing whitespace, which is not part of the value (RFC 9110 §5.5).
        value = value.rstrip(b" \t")
        if name == b"expect" and value.lower() == b"100-continue":
            self._expect_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self.parser
        scope = self.scope
        scope["method"] = parser.get_method().decode("ascii")
        version = parser.get_http_version()
        if version != "1.1":
            scope["http_version"] = version
        # HTTP/1.0 has no Upgrade: a server ignores the field (RFC 9110 §7.8).
        if version != "1.0" and parser.should_upgrade() and self._websocket_upgrade():
            self._upgrading = True
            return  # the WebSocket protocol takes the connection (HttpParserUpgrade)
        url = httptools.parse_url(self.url)
        raw_path = url.path
        path = raw_path.decode("ascii")
        if "%" in path:
            path = urllib.parse.unquote(path)
        scope["path"] = self.root_path + path
        scope["raw_path"] = self.root_path.encode("ascii") + raw_path
        scope["query_string"] = url.query or b""
        cycle = Exchange(
            scope,
            self.transport,
            self.flow,
            self.loop,
            keep_alive=version != "1.0" and parser.should_keep_alive(),
            expect_continue=self._expect_continue,
            date=self._date(self.server_state.default_headers),
            on_complete=self._response_complete,
            read_more=self._read_more,
        )
        if self._busy_with_app() or self.pipeline:
            if len(self.pipeline) >= _MAX_QUEUED:
                self._refusal = (503, QUEUE_TOO_DEEP.format(limit=_MAX_QUEUED))
                raise _Refused()
            self.flow.pause_reading()  # pipelined: answered in order
            self.pipeline.append(cycle)
            return
        self._start(cycle)

    def on_body(self, body: bytes) -> None:
        cycle = self._receiving()
        if cycle is None:
            return
        cycle.body += body
        if len(cycle.body) > HIGH_WATER_LIMIT:
            self.flow.pause_reading()
        cycle.wake()

    def on_message_complete(self) -> None:
        self._message_ended = True
        cycle = self._receiving()
        if cycle is None:
            return
        cycle.more_body = False
        if cycle is self.cycle and self._waiting == _BODY:
            self._waiting = _ACTIVE  # the body is in: the app has no deadline of ours
            self._deadline = None
        cycle.wake()

    def _receiving(self) -> Exchange | None:
        """The exchange whose request the parser is reading (the last one queued)."""
        if self._upgrading:
            return None
        cycle = self.pipeline[-1] if self.pipeline else self.cycle
        if cycle is None or cycle.complete:
            return None
        return cycle

    # -- running the app --------------------------------------------------------------

    def _start(self, cycle: Exchange) -> None:
        self.cycle = cycle
        self._waiting = _ACTIVE
        self._deadline = None
        cap = self.limits.max_concurrency
        app = self.app
        if cap is not None and len(self.tasks) >= cap:
            app = self._busy or _busy_app(self.limits.retry_after)
        task = self.loop.create_task(_run(app, cycle))
        task.add_done_callback(self.tasks.discard)
        self.tasks.add(task)

    def _read_more(self) -> None:
        """The running app awaits its body: read on, unless requests already wait their turn.

        Queued requests mean its body has been read whole; reading on would only queue
        more requests behind a slow app, without bound.
        """
        if not self.pipeline and self._refusal is None:
            self.flow.resume_reading()
            self._expect_body()  # after a 100 Continue, the body's time starts

    def _response_complete(self, cycle: Exchange) -> None:
        self.server_state.total_requests += 1
        if self.transport.is_closing():
            return
        if self.pipeline:
            self._start(self.pipeline.popleft())
            self._expect_body()  # its body waited unread behind the one before it
            return
        if self._refusal is not None:  # a pipelined request refused while this one ran
            self._refuse(*self._refusal)
            return
        self.flow.resume_reading()
        if self._in_head:
            self._expect(_HEADERS, self.limits.header_timeout)
        else:
            self._expect(_IDLE, self.keep_alive_timeout)

    # -- WebSocket ------------------------------------------------------------------

    def _websocket_upgrade(self) -> bool:
        if self.config.ws_protocol_class is None:
            return False
        connection: list[bytes] = []
        upgrade = None
        for name, value in self.headers:
            if name == b"connection":
                connection = [token.lower().strip() for token in value.split(b",")]
            elif name == b"upgrade":
                upgrade = value.lower()
        return b"upgrade" in connection and upgrade == b"websocket"

    def _upgrade(self) -> None:
        """Hand the connection to the WebSocket protocol, replaying the request to it."""
        if not self._upgrading:
            # Another protocol (h2c) or CONNECT: the request is answered as HTTP/1.1, and
            # the parser reads nothing after it, so the connection ends with its answer.
            _LOG.warning("Unsupported upgrade request.")
            if self._busy_with_app() or self.pipeline:
                (self.pipeline[-1] if self.pipeline else self.cycle).keep_alive = False  # type: ignore[union-attr]
            else:
                self.transport.close()
            return
        if self._busy_with_app() or self.pipeline:
            self._refuse(400, UPGRADE_BEHIND_REQUEST)
            return
        self.connections.discard(self)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        method = self.scope["method"].encode()
        output = [method, b" ", self.url, b" HTTP/1.1\r\n"]
        for name, value in self.headers:
            output += [name, b": ", value, b"\r\n"]
        output.append(b"\r\n")
        websocket: Any = self.config.ws_protocol_class
        protocol = websocket(
            config=self.config, server_state=self.server_state, app_state=self.app_state
        )
        protocol.connection_made(self.transport)
        self.transport.set_protocol(protocol)
        protocol.data_received(b"".join(output))


async def _run(app: Any, cycle: Exchange) -> None:
    """Run the app for one exchange; a failure answers 500 or closes the connection."""
    try:
        await app(cycle.scope, cycle.receive, cycle.send)
    except BaseException as exc:
        _LOG.error(APP_FAILED, exc_info=exc)
        _close_failed(cycle)
        if not isinstance(exc, Exception):
            raise
        return
    if not cycle.complete and not cycle.disconnected:
        _LOG.error("The ASGI app returned without completing its response.")
        _close_failed(cycle)


def _close_failed(cycle: Exchange) -> None:
    if cycle.transport.is_closing():
        return
    if not cycle.started:
        cycle.transport.write(_CRASHED)
    else:
        cycle.flush_head()  # what was sent stands; the close tells the rest never comes
    cycle.transport.close()


def _busy_app(retry_after: int) -> Any:
    response = ProblemResponse(
        503, SATURATED.format(retry=retry_after), headers=[("retry-after", str(retry_after))]
    )

    async def busy(scope: Scope, receive: Receive, send: Send) -> None:
        await response(scope, receive, send)

    return busy


class EdgeWebSocketProtocol(WebSocketsSansIOProtocol):
    """uvicorn's WebSocket protocol, with the ASGI TLS extension in the scope (mTLS)."""

    async def run_asgi(self) -> None:
        if self.scheme == "wss":
            extensions: Any = self.scope["extensions"]
            extensions["tls"] = tls_extension(self.transport)
        await super().run_asgi()


def protocol_for(
    limits: ListenerConfig, on_refused: Callable[[int], None] | None = None
) -> type[EdgeProtocol]:
    """A protocol class bound to one listener's limits (uvicorn takes a class)."""
    return type(
        "EdgeProtocol",
        (EdgeProtocol,),
        {
            "limits": limits,
            "_busy": staticmethod(_busy_app(limits.retry_after)),
            "_on_refused": staticmethod(on_refused) if on_refused is not None else None,
        },
    )


def listener_options(
    limits: ListenerConfig, on_refused: Callable[[int], None] | None = None
) -> dict[str, Any]:
    """uvicorn.Config options for a listener: our protocol, keep-alive, no banner.

    `proxy_headers` is off: uvicorn would otherwise rewrite the peer address from
    X-Forwarded-For sent by 127.0.0.1; the gateway resolves the client itself
    through `trusted_proxies` (gateway/proxy/headers.py).
    """
    return {
        "http": protocol_for(limits, on_refused),
        "ws": EdgeWebSocketProtocol,
        "proxy_headers": False,
        "timeout_keep_alive": limits.keep_alive_timeout,
        "server_header": False,
    }


__all__ = ["EdgeProtocol", "EdgeWebSocketProtocol", "listener_options", "protocol_for"]
