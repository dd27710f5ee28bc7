"""The public listener's HTTP/1.1 protocol: uvicorn's httptools protocol plus edge limits.

Measured with raw sockets against uvicorn 0.54 + httptools 0.9 (see
docs/policies-edge.md): uvicorn has no deadline for receiving headers (a client
that connects and sends a header byte every few seconds holds the connection
forever; the keep-alive timer is cancelled by the first byte), no limit on the
size of the header block or the URL, and its `limit_concurrency` counts idle
keep-alive connections and answers 503 without Retry-After. This subclass adds:

- a header deadline, armed when a connection opens and when the next request's
  first byte arrives, disarmed when the headers are complete → 408 and close;
- a cap on the header block (431) and on the request target (414), checked as
  the parser delivers them, so memory is bounded before the headers end;
- a cap on requests in progress on this listener → 503 + Retry-After.

Errors written here are problem+json like every other error; they close the
connection because the rest of the request was never read.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol

from gateway.config.models import ListenerConfig
from gateway.problem import TITLES, ProblemResponse
from gateway.tls import tls_extension
from gateway.types import Receive, Scope, Send

HEADERS_TOO_LARGE = "The request's header fields exceed {limit} bytes."
URL_TOO_LONG = "The request target exceeds {limit} bytes."
HEADERS_TOO_SLOW = "The request's headers did not arrive within {limit:g} seconds."
SATURATED = "The gateway is handling as many requests as it may; retry in {retry} s."
INVALID_REQUEST = "The request is not valid HTTP/1.1."


class _Refused(Exception):
    """Raised from a parser callback to stop parsing; `status` says why."""


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


class EdgeProtocol(HttpToolsProtocol):
    limits: ListenerConfig = ListenerConfig.model_validate({})
    _busy: Any = None
    _on_refused: Any = None  # called with the status of each refusal (metrics)

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        # TLS: the ASGI TLS extension (the verified client certificate, for mTLS), once
        # per connection; uvicorn's protocols do not put it in the scope.
        self._tls: Any = {"tls": tls_extension(transport)} if self.scheme == "https" else None
        self._head_bytes = 0
        self._raw_head = 0
        self._refusal: tuple[int, str] | None = None
        self._header_timer: Any = None
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        if self._header_timer is None:
            self._header_timer = self.loop.call_later(
                self.limits.header_timeout, self._headers_too_slow
            )

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            detail = HEADERS_TOO_SLOW.format(limit=self.limits.header_timeout)
            self._refuse(408, detail)

    def _refuse(self, status: int, detail: str) -> None:
        self._disarm()
        self.transport.write(_raw_problem(status, detail))
        self.transport.close()
        if self._on_refused is not None:
            self._on_refused(status)

    # -- parser callbacks ------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self.cycle is None or self.cycle.response_complete:
            if self._header_timer is None:
                self._raw_head = 0
            self._arm()  # a new request starts: its headers are on the clock
        if self._header_timer is None:  # headers done: this is body
            super().data_received(data)
            return
        self._raw_head += len(data)
        super().data_received(data)
        # httptools hands a header over only once it is complete: bound what it buffers.
        limit = self.limits.max_header_bytes + self.limits.max_url_bytes + 64
        waiting = self._header_timer is not None and not self.transport.is_closing()
        if waiting and self._raw_head > limit:
            self._refuse(431, HEADERS_TOO_LARGE.format(limit=self.limits.max_header_bytes))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_bytes = 0
        if self._tls is not None:
            self.scope["extensions"] = self._tls

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > self.limits.max_url_bytes:
            self._refusal = (414, URL_TOO_LONG.format(limit=self.limits.max_url_bytes))
            raise _Refused()

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_bytes += len(name) + len(value) + 4
        if self._head_bytes > self.limits.max_header_bytes:
            self._refusal = (431, HEADERS_TOO_LARGE.format(limit=self.limits.max_header_bytes))
            raise _Refused()
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm()
        cap = self.limits.max_concurrency
        saved = self.app
        if cap is not None and len(self.tasks) >= cap:
            self.app = self._busy or _busy_app(self.limits.retry_after)
        try:
            super().on_headers_complete()
        finally:
            self.app = saved

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to any parser error; ours is problem+json (or a refusal above)."""
        status, detail = self._refusal or (400, INVALID_REQUEST)
        self._refuse(status, detail)


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
