"""WebSocket upgrades on the public listener: the API's chain decides at the upgrade.

An upgrade is a GET of the API's contract operation: it is routed, resolved and run
through the API's policy chain like any request (authentication, tier guard, the
rate limit, which counts the connection), then the per-consumer connection cap is
checked, the upstream is connected, and only then is the client accepted. Every
refusal before that is problem+json, sent with the ASGI `websocket.http.response`
extension (uvicorn implements it); a server without it gets close code 1008.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from gateway.context import RequestContext
from gateway.observability.access_log import log_request
from gateway.operations import resolve
from gateway.pipeline import policy_failed, policy_name
from gateway.problem import ProblemResponse
from gateway.proxy.errors import UpstreamError, problem_for
from gateway.proxy.websocket import WebSocketRelay
from gateway.routing import BAD_PATH, PathRejected, Route, normalise_path
from gateway.types import Message, Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.app import Gateway

NOT_WEBSOCKET = "No WebSocket endpoint is published at '{path}'."
NOT_AN_UPGRADE_OPERATION = "Operation {operation} does not accept WebSocket upgrades."
TOO_MANY = "This consumer already has {limit} open WebSocket connections to API '{api}'."
UPGRADED = 101  # the status logged for an accepted connection


class WebSockets:
    """The listener's WebSocket side: relays per API, open connections per consumer."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway
        self.relays: dict[str, WebSocketRelay] = {}
        self.allowed: dict[str, frozenset[str] | None] = {}  # API → operation names, None: all
        self.open: Counter[tuple[str, str]] = Counter()

    def start(self) -> None:
        """Build each WebSocket API's relay (after the upstreams have started)."""
        upstreams = self.gateway.upstreams
        for route in self.gateway.table.routes:
            api = route.api
            if api.websocket is None:
                continue
            self.relays[api.name] = WebSocketRelay(
                api.websocket,
                upstreams.pool(api.name),
                self.gateway.forwarded,
                api.upstream.timeouts.connect,
                ssl_context=upstreams.tls_context(api.name),
                server_name=api.upstream.tls.server_name if api.upstream.tls else None,
            )
            operations = api.websocket.operations
            self.allowed[api.name] = frozenset(operations) if operations else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gateway = self.gateway
        try:
            path = normalise_path(scope.get("raw_path") or scope["path"].encode())
        except PathRejected as reason:
            await deny(ProblemResponse(400, BAD_PATH.format(reason=reason)), scope, send)
            return
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        route = gateway.table.match(path, "GET", host.decode("latin-1")).route
        if route is None or route.api.name not in self.relays:
            await deny(ProblemResponse(404, NOT_WEBSOCKET.format(path=path)), scope, send)
            return
        ctx = gateway.new_context(route, path, scope, "GET")
        status = 500
        try:
            status = await self._upgrade(route, path, ctx, receive, send)
        finally:
            for observe in gateway.observers:
                observe(ctx, status)
            if gateway.access_log:
                log_request(ctx, status)

    async def _upgrade(
        self, route: Route, path: str, ctx: RequestContext, receive: Receive, send: Send
    ) -> int:
        api = route.api.name
        if route.contract is not None:
            resolved = resolve(route.contract, api, "GET", route.relative_path(path))
            if isinstance(resolved, ProblemResponse):
                ctx.log["ended_by"] = "contract"
                return await deny(resolved, ctx.scope, send)
            ctx.operation = resolved
            ctx.log["operation"] = resolved.name
            allowed = self.allowed[api]
            if allowed is not None and not {resolved.name, resolved.operation.key} & allowed:
                refused = ProblemResponse(
                    404, NOT_AN_UPGRADE_OPERATION.format(operation=resolved.name)
                )
                return await deny(refused, ctx.scope, send)
        for policy in route.chain:
            try:
                response = await policy(ctx)
            except Exception:
                response = policy_failed(policy, api)
            if response is not None:
                ctx.log["ended_by"] = policy_name(policy)
                return await deny(response, ctx.scope, send, ctx)
        relay = self.relays[api]
        consumer = f"consumer:{ctx.identity.consumer_id}" if ctx.identity else f"ip:{ctx.client_ip}"
        key = (api, consumer)
        limit = relay.config.max_connections_per_consumer
        if self.open[key] >= limit:
            ctx.log["ended_by"] = "websocket"
            too_many = ProblemResponse(429, TOO_MANY.format(limit=limit, api=api))
            return await deny(too_many, ctx.scope, send, ctx)
        self.open[key] += 1
        try:
            return await self._relay(relay, route, path, ctx, receive, send)
        finally:
            self.open[key] -= 1
            if not self.open[key]:
                del self.open[key]

    async def _relay(
        self,
        relay: WebSocketRelay,
        route: Route,
        path: str,
        ctx: RequestContext,
        receive: Receive,
        send: Send,
    ) -> int:
        forward = route.forward_path(path)
        path_qs = forward + "?" + ctx.query.decode("latin-1") if ctx.query else forward
        started = time.perf_counter()
        try:
            upstream, _target = await relay.open(ctx, path_qs)
        except UpstreamError as error:
            ctx.log["upstream_error"] = type(error).__name__
            return await deny(problem_for(error, route.api.name), ctx.scope, send, ctx)
        ctx.log["upstream_ms"] = round((time.perf_counter() - started) * 1000, 3)
        headers = [(b"x-request-id", ctx.request_id.encode()), *ctx.response_headers]
        accept: dict[str, Any] = {"type": "websocket.accept", "headers": headers}
        if upstream.subprotocol is not None:
            accept["subprotocol"] = upstream.subprotocol
        try:
            await send(accept)
            await relay.relay(upstream, receive, send, ctx)
        finally:
            await upstream.close()
        return UPGRADED


async def deny(response: Any, scope: Scope, send: Send, ctx: RequestContext | None = None) -> int:
    """Refuse an upgrade with an HTTP response (problem+json), or close 1008 without the
    `websocket.http.response` extension; return the status."""
    status = int(getattr(response, "status", 0) or getattr(response, "status_code", 403))
    extra = [(b"x-request-id", ctx.request_id.encode()), *ctx.response_headers] if ctx else []
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return status

    async def as_websocket(message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            headers = [*message.get("headers", []), *extra]
            message = {**message, "type": "websocket.http.response.start", "headers": headers}
        elif kind == "http.response.body":
            message = {**message, "type": "websocket.http.response.body"}
        await send(message)

    async def nothing() -> Message:
        return {"type": "websocket.disconnect", "code": 1006}

    await response(scope, nothing, as_websocket)
    return status


__all__ = ["WebSockets", "deny"]
