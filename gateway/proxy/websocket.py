"""Relay one accepted WebSocket connection to an API's target (RFC 6455).

The upstream side is the `websockets` library's client; the client side is the ASGI
WebSocket channel. Messages are relayed both ways with back-pressure: each side is
read only once the previous message has been written to the other (the server pauses
reading the client's socket when its queue fills; `websockets` stops reading the
upstream when its queue does). Limits: a message larger than `max_message_bytes`
either way closes with 1009, `idle_timeout` without a message closes with 1001.
Either side's close ends the other with the same code (and reason); a side that
vanishes without a close frame closes the other with 1001 (client gone) or 1014
(the upstream, "bad gateway").
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from gateway.config.websocket import WebSocketConfig
from gateway.context import RequestContext
from gateway.proxy.balancer import Target, TargetPool
from gateway.proxy.errors import UpstreamConnectError, UpstreamError, UpstreamTimeout
from gateway.proxy.headers import (
    HOP_BY_HOP,
    VIA,
    ForwardedPolicy,
    identity_headers,
    request_drop_set,
)
from gateway.types import Receive, Send

# Handshake fields the client library writes itself, or that belong to this hop only.
_HANDSHAKE = frozenset(
    {
        b"host",
        b"sec-websocket-key",
        b"sec-websocket-version",
        b"sec-websocket-extensions",
        b"sec-websocket-protocol",
        b"sec-websocket-accept",
        b"content-length",
        b"user-agent",
    }
)
# Close codes that must never be sent in a close frame (RFC 6455 §7.4.1).
_UNSENDABLE = frozenset({1004, 1005, 1006, 1015})
CLIENT_GONE = 1001  # going away
UPSTREAM_GONE = 1014  # bad gateway
TOO_BIG = 1009
IDLE = "The connection was idle for {seconds:g} s."
CLIENT_TOO_BIG = "A message exceeded {limit} bytes."
UPSTREAM_TOO_BIG = "The upstream sent a message larger than {limit} bytes."
UPSTREAM_CLOSED = "The upstream closed the connection."


class _Closed(Exception):
    def __init__(self, code: int, reason: str = "") -> None:
        super().__init__(code, reason)
        self.code = code
        self.reason = reason


def _sendable(code: int | None, fallback: int) -> int:
    if code is None or code in _UNSENDABLE or not (1000 <= code <= 4999):
        return fallback
    return code


class WebSocketRelay:
    """Built once per API at start-up."""

    def __init__(
        self,
        config: WebSocketConfig,
        pool: TargetPool,
        forwarded: ForwardedPolicy,
        connect_timeout: float,
        ssl_context: Any = None,
        server_name: str | None = None,
    ) -> None:
        self.config = config
        self.pool = pool
        self.forwarded = forwarded
        self.connect_timeout = connect_timeout
        self.drop = request_drop_set(pool.config.pass_headers) | HOP_BY_HOP | _HANDSHAKE
        self.tls: dict[str, Any] = {}
        if ssl_context is not None:
            self.tls["ssl"] = ssl_context
        if server_name is not None:
            self.tls["server_hostname"] = server_name

    def _headers(self, ctx: RequestContext) -> list[tuple[str, str]]:
        out = [
            (k.decode("latin-1"), v.decode("latin-1")) for k, v in ctx.headers if k not in self.drop
        ]
        peer = ctx.scope["client"][0] if ctx.scope.get("client") else ""
        proto = "https" if ctx.scope.get("scheme") in ("https", "wss") else "http"
        extra = [
            (b"x-forwarded-for", self.forwarded.forwarded_for(peer, ctx.headers)),
            (b"x-forwarded-proto", proto.encode()),
            (b"x-request-id", ctx.request_id.encode()),
            VIA,
        ]
        if ctx.trace is not None:
            extra.append((b"traceparent", ctx.trace.traceparent()))
        if ctx.identity is not None:
            extra.extend(identity_headers(ctx.identity, ctx.route.api.tier != "system"))
        extra.extend(ctx.upstream_headers)
        out.extend((k.decode("latin-1"), v.decode("latin-1")) for k, v in extra)
        return out

    async def open(self, ctx: RequestContext, path_qs: str) -> tuple[ClientConnection, Target]:
        """Connect to a target; UpstreamError when none answers the handshake."""
        target = self.pool.pick()
        base = target.url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
        subprotocols = ctx.scope.get("subprotocols") or None
        ctx.log["upstream_target"] = target.url
        try:
            upstream = await connect(
                base + path_qs,
                additional_headers=self._headers(ctx),
                subprotocols=subprotocols,
                user_agent_header=None,
                compression=None,
                open_timeout=self.connect_timeout,
                max_size=self.config.max_message_bytes,
                proxy=None,
                **self.tls,
            )
        except TimeoutError as error:
            self.pool.failed(target)
            raise UpstreamTimeout(str(error) or "handshake timed out") from error
        except InvalidStatus as error:
            self.pool.succeeded(target)  # it answered: not a failure of the target
            status = error.response.status_code
            raise UpstreamConnectError(f"the upstream refused the upgrade ({status})") from error
        except (OSError, InvalidHandshake) as error:
            self.pool.failed(target)
            raise UpstreamConnectError(str(error)) from error
        self.pool.succeeded(target)
        return upstream, target

    async def relay(
        self, upstream: ClientConnection, receive: Receive, send: Send, ctx: RequestContext
    ) -> None:
        """Relay until either side closes; close the other one the same way."""
        last = [time.monotonic()]
        limit = self.config.max_message_bytes

        async def from_client() -> None:
            while True:
                message = await receive()
                kind = message["type"]
                if kind == "websocket.disconnect":
                    code = _sendable(message.get("code"), CLIENT_GONE)
                    raise _Closed(code, message.get("reason") or "")
                if kind != "websocket.receive":
                    continue
                data = message.get("text")
                if data is None:
                    data = message.get("bytes") or b""
                if len(data) > limit:
                    raise _Closed(TOO_BIG, CLIENT_TOO_BIG.format(limit=limit))
                last[0] = time.monotonic()
                await upstream.send(data)

        async def from_upstream() -> None:
            try:
                async for data in upstream:
                    last[0] = time.monotonic()
                    if isinstance(data, str):
                        await send({"type": "websocket.send", "text": data})
                    else:
                        await send({"type": "websocket.send", "bytes": data})
            except ConnectionClosed:
                pass
            sent = upstream.protocol.close_sent
            if sent is not None and sent.code == TOO_BIG:
                raise _Closed(TOO_BIG, UPSTREAM_TOO_BIG.format(limit=limit))
            received = upstream.protocol.close_rcvd
            if received is None:
                raise _Closed(UPSTREAM_GONE, UPSTREAM_CLOSED)
            raise _Closed(_sendable(received.code, 1000), received.reason)

        async def idle() -> None:
            timeout = self.config.idle_timeout
            while True:
                await asyncio.sleep(max(0.0, last[0] + timeout - time.monotonic()))
                if time.monotonic() - last[0] >= timeout:
                    raise _Closed(CLIENT_GONE, IDLE.format(seconds=timeout))

        tasks = {
            asyncio.ensure_future(from_client()): "client",
            asyncio.ensure_future(from_upstream()): "upstream",
            asyncio.ensure_future(idle()): "idle",
        }
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        task = next(iter(done))
        error = task.exception()
        if not isinstance(error, _Closed):
            await upstream.close(1011)
            await send({"type": "websocket.close", "code": 1011})
            if error is not None:
                raise error
            return
        side = tasks[task]
        ctx.log["ws_closed_by"] = side
        ctx.log["ws_close_code"] = error.code
        if side != "client" or error.code == TOO_BIG:
            await _close_client(send, error.code, error.reason)
        if side != "upstream":
            code = CLIENT_GONE if side == "client" and error.code == TOO_BIG else error.code
            await upstream.close(code, error.reason if code == error.code else "")


async def _close_client(send: Send, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # the client is gone already: nothing to tell it
        await send({"type": "websocket.close", "code": code, "reason": reason[:120]})


__all__ = ["UpstreamError", "WebSocketRelay"]
