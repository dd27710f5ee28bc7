"""Forward one request to an API's upstream and stream the answer back.

This is the hot path. It is a plain ASGI-level function (no Request/Response
objects), and everything that can be decided at start-up is decided in __init__.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from gateway.context import RequestContext
from gateway.proxy.balancer import Target, TargetPool
from gateway.proxy.canary import Canary
from gateway.proxy.errors import UpstreamError, UpstreamSaturated, problem_for
from gateway.proxy.headers import (
    HOP_BY_HOP,
    VIA,
    ForwardedPolicy,
    field_tokens,
    identity_headers,
    nearest,
    request_drop_set,
)
from gateway.proxy.transport import IDEMPOTENT, UpstreamRequest, UpstreamResponse
from gateway.types import Message, RawHeaders, Receive, Send

BUFFER_REQUEST_LIMIT = 1 << 20  # bodies up to 1 MiB with a Content-Length are read whole
BUFFER_RESPONSE_LIMIT = 1 << 16  # responses up to 64 KiB are sent in one message
NO_BODY = frozenset({204, 304})  # statuses that never have a body (RFC 9110 §6.4.1)
CLIENT_GONE = "client_disconnected"  # access-log field, set when the client went away


class ClientDisconnected(Exception):
    """The client went away while its request body was being read."""


class UpstreamStreamBroken(Exception):
    """The upstream failed after the response had started; the connection is aborted."""


class Forwarder:
    def __init__(
        self,
        api_name: str,
        pool: TargetPool,
        forwarded: ForwardedPolicy,
        canary: Canary | None = None,
    ) -> None:
        self.api_name = api_name
        self.pool = pool  # the default target set; the canary's set for requests it matches
        self.canary = canary
        self.forwarded = forwarded
        timeouts = pool.config.timeouts
        self.connect_timeout = timeouts.connect
        self.read_timeout = timeouts.read
        self.retries = pool.config.retries
        # Upstream 5xx count against the breaker only when the API opts in.
        self.failure_from = 500 if pool.config.circuit_breaker.count_5xx else 1000
        self.max_headers = pool.config.max_response_headers
        self.max_header_bytes = pool.config.max_response_header_bytes
        self.drop = request_drop_set(pool.config.pass_headers)

    async def forward(self, ctx: RequestContext, path: str, receive: Receive, send: Send) -> int:
        """Forward and answer; return the status sent to the client."""
        headers, length, chunked = self._request_headers(ctx)
        body: bytes | AsyncIterator[bytes] | None = None
        replayable = True
        if chunked:
            # The body is re-chunked on the way out.
            headers = [item for item in headers if item[0] != b"content-length"]
            body, replayable = _stream_body(receive, ctx), False
        elif length is not None and length > BUFFER_REQUEST_LIMIT:
            body, replayable = _stream_body(receive, ctx), False
        elif length:  # bodies up to the limit are read whole: replayable on a retry
            body = await _read_body(receive, length)
        path_qs = path + "?" + ctx.query.decode("latin-1") if ctx.query else path
        attempts = 1 + (self.retries if ctx.method in IDEMPOTENT and replayable else 0)
        started = time.perf_counter()
        target: Target | None = None
        response: UpstreamResponse | None = None
        pool = self.canary.pool if self.canary and self.canary.matches(ctx) else self.pool
        ctx.log["upstream_set"] = pool.name
        for attempt in range(attempts):
            target = pool.pick(exclude=target)
            request = UpstreamRequest(
                ctx.method,
                target.url,
                path_qs,
                headers,
                body,
                self.connect_timeout,
                self.read_timeout,
                self.max_headers,
                self.max_header_bytes,
            )
            ctx.log["upstream_target"] = target.url
            try:
                # Within the target's connection cap. On success the slot is released
                # once the response is closed (below); on failure at once.
                if not target.slots.try_acquire():
                    await self._wait_for_slot(pool, target)
                try:
                    response = await target.transport.send(request)
                except BaseException as error:
                    target.slots.release()
                    self._failed_send(ctx, pool, target, error)
                    raise
            except UpstreamError as error:
                if attempt + 1 < attempts:  # only idempotent, replayable requests get here
                    continue
                ctx.log["upstream_ms"] = _ms(started)
                return await self._fail(ctx, error, send)
            break
        assert response is not None and target is not None
        try:
            if response.status >= self.failure_from:
                pool.failed(target)
            else:
                pool.succeeded(target)
            ctx.log["upstream_ms"] = _ms(started)
            return await self._respond(ctx, pool, target, response, receive, send, replayable)
        except UpstreamStreamBroken as error:
            # Headers are gone already: the only honest signal left is to abort.
            if CLIENT_GONE not in ctx.log:
                pool.failed(target)
            ctx.log["upstream_error"] = str(error)
            raise
        finally:
            try:
                await response.aclose()
            finally:
                target.slots.release()

    async def _wait_for_slot(self, pool: TargetPool, target: Target) -> None:
        """Queue for a slot of a target at its cap (UpstreamSaturated when none comes)."""
        try:
            await target.slots.acquire(self.connect_timeout)
        except UpstreamSaturated:
            pool.abandoned(target)  # the gateway's own limit says nothing of it
            raise

    @staticmethod
    def _failed_send(
        ctx: RequestContext, pool: TargetPool, target: Target, error: BaseException
    ) -> None:
        """Give the breaker its verdict on a send that raised `error`."""
        if not isinstance(error, UpstreamError):
            pool.abandoned(target)  # cancelled, or the client went away
        elif CLIENT_GONE in ctx.log:  # the client broke its own upload: not the target
            pool.abandoned(target)
            raise ClientDisconnected() from error
        else:
            pool.failed(target)

    def _request_headers(self, ctx: RequestContext) -> tuple[RawHeaders, int | None, bool]:
        """The headers for the upstream, the request's Content-Length and whether it is
        chunked: one pass over the client's headers that filters and reads them at once."""
        drop = self.drop
        out: RawHeaders = []
        length: int | None = None
        chunked = False
        host = b""
        listed: frozenset[bytes] | None = None  # names Connection lists beyond `drop`
        for item in ctx.headers:
            key = item[0]
            if key in drop:
                if key == b"host":
                    host = item[1]
                elif key == b"transfer-encoding":
                    chunked = True
                elif key == b"connection":
                    tokens = field_tokens(item[1])
                    if not tokens <= drop:
                        listed = tokens if listed is None else listed | tokens
            else:
                if key == b"content-length":
                    length = int(item[1])
                out.append(item)
        if listed is not None:
            out = [item for item in out if item[0] not in listed]
        scope = ctx.scope
        client = scope.get("client")
        peer = client[0] if client else ""
        forwarded = self.forwarded
        if forwarded.trusts_any and forwarded.is_trusted(peer):
            proto = nearest(ctx.headers, b"x-forwarded-proto") or scope["scheme"].encode()
            fwd_host = nearest(ctx.headers, b"x-forwarded-host") or host
            out.append((b"x-forwarded-for", forwarded.forwarded_for(peer, ctx.headers)))
        else:
            proto = scope["scheme"].encode()
            fwd_host = host
            out.append((b"x-forwarded-for", peer.encode()))
        out.append((b"x-forwarded-proto", proto))
        if fwd_host:
            out.append((b"x-forwarded-host", fwd_host))
        out.append((b"x-request-id", ctx.request_id.encode()))
        out.append(VIA)
        trace = ctx.trace
        if trace is not None:
            out.append((b"traceparent", trace.traceparent()))
            if trace.state:
                out.append((b"tracestate", trace.state))
        if ctx.identity is not None:
            out.extend(identity_headers(ctx.identity, ctx.route.api.tier != "system"))
        if ctx.upstream_headers:
            out.extend(ctx.upstream_headers)
        return out, length, chunked

    async def _respond(
        self,
        ctx: RequestContext,
        pool: TargetPool,
        target: Target,
        response: UpstreamResponse,
        receive: Receive,
        send: Send,
        body_consumed: bool,
    ) -> int:
        """Send the upstream's answer; return the status the client got."""
        body: bytes | None = b""
        status = response.status
        headers, length = _response_head(response.headers, ctx)
        bodiless = ctx.method == "HEAD" or status in NO_BODY
        small = bodiless or (length is not None and length <= BUFFER_RESPONSE_LIMIT)
        if not bodiless and small:
            # Read a small body before answering, so an upstream failure is still a 502.
            body = response.buffered_body()
            if body is None:
                try:
                    body = b"".join([chunk async for chunk in response.iter_body()])
                except UpstreamError as error:
                    pool.failed(target)
                    return await self._fail(ctx, error, send)
        if status in NO_BODY and length is not None:
            # A 304 may state the representation's length; the server would then wait
            # for that many body bytes that never come.
            headers = [(k, v) for k, v in headers if k != b"content-length"]
        for hook in ctx.response_hooks:
            result = hook(ctx, response.status, headers)
            if result is not None:
                await result
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        if small:
            await send({"type": "http.response.body", "body": body})
            return response.status
        # A long stream: stop reading the upstream as soon as the client goes away.
        watcher = asyncio.ensure_future(_disconnected(receive)) if body_consumed else None
        try:
            async for chunk in _guarded(response):
                if watcher is not None and watcher.done():
                    ctx.log[CLIENT_GONE] = True
                    return 499
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return response.status
        finally:
            if watcher is not None:
                watcher.cancel()

    async def _fail(self, ctx: RequestContext, error: UpstreamError, send: Send) -> int:
        ctx.log["upstream_error"] = type(error).__name__
        response = problem_for(error, self.api_name)
        response.headers.extend(ctx.response_headers)
        response.headers.append((b"x-request-id", ctx.request_id.encode()))
        await response({}, _no_receive, send)
        return response.status


# Headers of the upstream's answer the gateway sets itself: the listener adds its own
# Date (a second one would be two lines of a singleton field, RFC 9110 §6.6.1; nginx
# replaces it the same way) and the request id is the gateway's.
_REPLACED = HOP_BY_HOP | {b"date", b"x-request-id"}


def _response_head(upstream: RawHeaders, ctx: RequestContext) -> tuple[RawHeaders, int | None]:
    """The headers for the client and the upstream's Content-Length (None when it has
    none or an invalid one): one pass over the upstream's headers."""
    out: RawHeaders = []
    length: bytes | None = None
    listed: frozenset[bytes] | None = None  # names Connection lists beyond _REPLACED
    for item in upstream:
        key = item[0]
        if key in _REPLACED:
            if key == b"connection":
                tokens = field_tokens(item[1])
                if not tokens <= _REPLACED:
                    listed = tokens if listed is None else listed | tokens
        else:
            if key == b"content-length" and length is None:
                length = item[1]
            out.append(item)
    if listed is not None:
        out = [item for item in out if item[0] not in listed]
    out.append((b"x-request-id", ctx.request_id.encode()))
    if ctx.response_headers:
        out.extend(ctx.response_headers)
    return out, _content_length(length)


def _content_length(value: bytes | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def _guarded(response: UpstreamResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in response.iter_body():
            yield chunk
    except UpstreamError as error:
        raise UpstreamStreamBroken(str(error)) from error


async def _read_body(receive: Receive, length: int) -> bytes:
    parts = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientDisconnected()
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _stream_body(receive: Receive, ctx: RequestContext) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # The transport wraps this in its own error; the mark tells whose fault it was.
            ctx.log[CLIENT_GONE] = True
            raise ClientDisconnected()
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return


async def _disconnected(receive: Receive) -> None:
    """Return when the client goes away (an unread empty request body is not that)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _no_receive() -> Message:
    return {"type": "http.disconnect"}


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)
