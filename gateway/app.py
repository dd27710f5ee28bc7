"""The gateway as an ASGI app: route, run the API's policy chain, forward.

`Gateway.__call__` is the hot path and stays a plain ASGI callable. Everything
else (health, OAuth, catalogue) lives in a Starlette shell that also owns the
lifespan, where clients, stores and policy chains are built once.

The gateway is given everything it uses (services, policies, components, guards,
observers); `gateway.stack.build_gateway` builds them in start-up order.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute
from starlette.routing import Route as StarletteRoute

from gateway.channels import GuardedChannels, RequestRejected
from gateway.components import Component, ComponentFactory
from gateway.config.models import GatewayConfig
from gateway.context import Observer, RequestContext, UnroutedObserver
from gateway.framing import framing_problem
from gateway.ids import random_hex
from gateway.observability.access_log import log_outside, log_request
from gateway.observability.tracecontext import from_headers as trace_from_headers
from gateway.operations import load_route_contract, resolve
from gateway.pipeline import PolicySpec, build_chain, policy_failed, policy_name
from gateway.problem import INTERNAL_ERROR, Answer, ProblemResponse
from gateway.proxy.forward import ClientDisconnected, Forwarder, UpstreamStreamBroken
from gateway.proxy.headers import ForwardedPolicy
from gateway.proxy.upstreams import Upstreams
from gateway.routing import BAD_PATH, PathRejected, Route, RouteTable, normalise_path
from gateway.services import Services
from gateway.types import Message, Receive, Scope, Send, ShellGuard
from gateway.websocket import WebSockets

if TYPE_CHECKING:
    from gateway.observability.tracing import SpanTracer

NOT_FOUND = "No API is published at '{path}'."
METHOD_NOT_ALLOWED = "This path does not accept {method}; allowed: {allowed}."
CLIENT_GONE = "The client closed the connection before its request body arrived."
NOT_READY = "The gateway is still starting."
_REQUEST_ID = re.compile(rb"^[A-Za-z0-9._:-]{1,128}$")
NO_COMPONENT = "this gateway has no {kind} component"
C = TypeVar("C", bound=Component)


class Gateway:
    """ASGI entry point of the public listener."""

    def __init__(
        self,
        config: GatewayConfig,
        services: Services,
        policies: Mapping[str, PolicySpec],
        components: Sequence[Component | ComponentFactory] = (),
        *,
        shell_guards: Sequence[ShellGuard] = (),
        observers: Sequence[Observer] = (),
        unrouted_observers: Sequence[UnroutedObserver] = (),
        tracer: SpanTracer | None = None,
    ) -> None:
        """`components` in start-up order (stopped in reverse); a factory is called with
        this gateway, for a component that reads the running gateway."""
        self.config = config
        self.services = services
        self.policies = policies
        self.table = RouteTable(config.apis)
        self.forwarded = ForwardedPolicy(config.trusted_proxies)
        self.upstreams = Upstreams(
            config, gateway_app=self, credentials=services.service_credentials
        )
        self.access_log = config.access_log
        self.ready = False
        self.in_flight = 0
        # Run before the shell's own endpoints (e.g. a per-IP limit on /oauth/token).
        self.shell_guards = tuple(shell_guards)
        # Called after every API request: metrics, data flow, spans.
        self.observers = tuple(observers)
        # Called for every request no API handled, the listener's refusals included.
        self.unrouted_observers = tuple(unrouted_observers)
        self.tracer = tracer  # a span per request when span export is configured
        self.components = tuple(
            each if isinstance(each, Component) else each(self) for each in components
        )
        self.websockets = WebSockets(self)
        self.shell = Starlette(
            routes=self._shell_routes(),
            lifespan=self._lifespan,
            exception_handlers={HTTPException: _http_problem, Exception: _crash_problem},
        )

    def component(self, kind: type[C]) -> C:
        """This gateway's component of class `kind` (e.g. the reload component, for SIGHUP)."""
        for each in self.components:
            if isinstance(each, kind):
                return each
        raise LookupError(NO_COMPONENT.format(kind=kind.__name__))

    def client_ip(self, scope: Scope) -> str:
        """The client's address for the shell's endpoints, as the trusted proxies say."""
        peer = scope["client"][0] if scope.get("client") else ""
        return self.forwarded.client_ip(peer, scope["headers"])

    # -- start-up -------------------------------------------------------------

    def _shell_routes(self) -> list[BaseRoute]:
        routes: list[BaseRoute] = [
            StarletteRoute("/healthz", self._healthz, methods=["GET", "HEAD"]),
            StarletteRoute("/readyz", self._readyz, methods=["GET", "HEAD"]),
        ]
        for component in self.components:
            routes.extend(component.public_routes())
        return routes

    @contextlib.asynccontextmanager
    async def _lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.startup()
        try:
            yield
        finally:
            await self.shutdown()

    async def startup(self) -> None:
        for component in self.components:
            await component.start()
        await self.upstreams.start()
        for route in self.table.routes:
            pool = self.upstreams.pool(route.api.name)
            canary = self.upstreams.canary(route.api.name)
            route.upstream = Forwarder(route.api.name, pool, self.forwarded, canary)
            route.contract = load_route_contract(self.config, route.api)
            route.resolved = {}
            route.chain = build_chain(
                self.policies, self.config, route.api, self.services, route.contract
            )
        self.websockets.start()
        self.ready = True

    async def shutdown(self) -> None:
        self.ready = False
        await self.upstreams.aclose()
        for component in reversed(self.components):
            await component.stop()

    # -- the request path -----------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "websocket":
                await self.websockets(scope, receive, send)
                return
            await self.shell(scope, receive, send)
            return
        refused = framing_problem(scope)
        if refused is not None:
            await self._outside_api(refused, scope, receive, send)
            return
        try:
            path = normalise_path(scope.get("raw_path") or scope["path"].encode())
        except PathRejected as reason:
            rejected = ProblemResponse(400, BAD_PATH.format(reason=reason))
            await self._outside_api(rejected, scope, receive, send)
            return
        method = scope["method"]
        table = self.table
        host = _header(scope, b"host") if table.binds_hosts else None
        match = table.match(path, method, host.decode("latin-1") if host else "")
        route = match.route
        if route is None:
            if match.method_not_allowed:
                refused = _method_not_allowed(method, match.method_not_allowed)
                await self._outside_api(refused, scope, receive, send)
                return
            await self._outside_api(self._to_shell, scope, receive, send)
            return
        await self._handle(route, path, scope, receive, send)

    async def _outside_api(self, app: Any, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer a request no API handles, with X-Request-ID and its access-log line."""
        request_id = _request_id(scope)
        id_header = (b"x-request-id", request_id.encode())
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", ()) if h[0] != b"x-request-id"]
                message = {**message, "headers": [*headers, id_header]}
            await send(message)

        try:
            await app(scope, receive, send_with_id)
        finally:
            for observe in self.unrouted_observers:
                observe(scope["method"], status)
            if self.access_log:
                log_outside(scope, status, started, request_id)

    def refused(self, status: int) -> None:
        """The listener refused a request before it reached the app (400/408/414/431)."""
        for observe in self.unrouted_observers:
            observe("", status)

    async def _to_shell(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.shell_guards:
            peer = scope["client"][0] if scope.get("client") else ""
            client_ip = self.forwarded.client_ip(peer, scope["headers"])
            for guard in self.shell_guards:
                response = await guard(scope, client_ip)
                if response is not None:
                    await response(scope, receive, send)
                    return
        await self.shell(scope, receive, send)

    def new_context(self, route: Route, path: str, scope: Scope, method: str) -> RequestContext:
        """The context of one request to `route` (an upgrade is a GET)."""
        request_id = traceparent = tracestate = None
        for key, value in scope["headers"]:  # one pass for the three; each its first line
            if key == b"x-request-id":
                request_id = value if request_id is None else request_id
            elif key == b"traceparent":
                traceparent = value if traceparent is None else traceparent
            elif key == b"tracestate":
                tracestate = value if tracestate is None else tracestate
        client = scope.get("client")
        peer = client[0] if client else ""
        return RequestContext(
            scope=scope,
            route=route,
            method=method,
            path=path,
            query=scope.get("query_string", b""),
            headers=scope["headers"],
            request_id=(
                request_id.decode()
                if request_id and _REQUEST_ID.fullmatch(request_id)
                else random_hex(16)
            ),
            client_ip=self.forwarded.client_ip(peer, scope["headers"]),
            started=time.perf_counter(),
            trace=trace_from_headers(traceparent, tracestate),
        )

    async def _handle(
        self, route: Route, path: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        ctx = self.new_context(route, path, scope, scope["method"])
        if self.tracer is not None:
            ctx.log["_span"] = self.tracer.start(ctx)
        status = 500
        self.in_flight += 1
        try:
            if route.contract is not None:
                preflight = (
                    ctx.header(b"access-control-request-method")
                    if ctx.method == "OPTIONS"
                    else None
                )
                resolved = resolve(
                    route.contract,
                    route.api.name,
                    ctx.method,
                    route.relative_path(path),
                    preflight,
                    route.resolved,
                )
                if isinstance(resolved, ProblemResponse):
                    ctx.log["ended_by"] = "contract"
                    status = await _send_policy_response(ctx, resolved, receive, send)
                    return
                ctx.operation = resolved
                ctx.log["operation"] = resolved.name
                if resolved.trimmed:
                    path = path[:-1]  # the upstream gets the operation's own path
            for policy in route.chain:
                try:
                    response = await policy(ctx)
                except ClientDisconnected:
                    raise
                except Exception:
                    response = policy_failed(policy, route.api.name)
                if response is not None:
                    ctx.log["ended_by"] = policy_name(policy)
                    status = await _send_policy_response(ctx, response, receive, send)
                    return
            if ctx.channel_wrappers:
                status = await _forward_guarded(ctx, route, path, receive, send)
            else:
                status = await route.upstream.forward(ctx, route.forward_path(path), receive, send)
        except ClientDisconnected:
            status = 499
            ctx.log["client_disconnected"] = True
        except UpstreamStreamBroken:
            status = 502  # the response was cut short; the server aborts the connection
            ctx.log["aborted"] = True
            raise
        finally:
            self.in_flight -= 1
            for observe in self.observers:
                observe(ctx, status)
            if self.access_log:
                log_request(ctx, status)

    # -- the shell's own endpoints ----------------------------------------------

    async def _healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def _readyz(self, request: Request) -> Answer:
        if not self.ready:
            return ProblemResponse(503, NOT_READY, headers=[("retry-after", "1")])
        return JSONResponse({"status": "ready", "apis": self.upstreams.state()})


async def _send_policy_response(
    ctx: RequestContext, response: Any, receive: Receive, send: Send
) -> int:
    """Send a policy's response, adding the headers the gateway always adds."""
    status = getattr(response, "status", 0) or getattr(response, "status_code", 200)
    extra = [(b"x-request-id", ctx.request_id.encode()), *ctx.response_headers]

    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", []), *extra]}
        await send(message)

    await response(ctx.scope, receive, send_with_headers)
    return int(status)


async def _forward_guarded(
    ctx: RequestContext, route: Route, path: str, receive: Receive, send: Send
) -> int:
    """Forward through the channels policies wrapped (see gateway/channels.py)."""
    guard = GuardedChannels(ctx, receive, send)
    forward_path = route.forward_path(path)
    try:
        status = await route.upstream.forward(ctx, forward_path, guard.receive, guard.send)
    except RequestRejected as rejection:
        return await guard.send_rejection(rejection)
    if guard.rejection is not None:
        return int(getattr(guard.rejection.response, "status", 400))
    return status


def _method_not_allowed(method: str, allowed: frozenset[str]) -> ProblemResponse:
    allow = ", ".join(sorted(allowed))
    detail = METHOD_NOT_ALLOWED.format(method=method, allowed=allow)
    return ProblemResponse(405, detail, headers=[("allow", allow)])


def _request_id(scope: Scope) -> str:
    """The client's X-Request-ID when it is a valid one, else a fresh one."""
    sent = _header(scope, b"x-request-id")
    return sent.decode() if sent and _REQUEST_ID.fullmatch(sent) else random_hex(16)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


# Starlette types an exception handler's answer as a Response; it serves any ASGI app.
async def _http_problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = NOT_FOUND.format(path=request.url.path) if exc.status_code == 404 else str(exc.detail)
    headers = list((exc.headers or {}).items())
    return ProblemResponse(exc.status_code, detail, headers=headers)  # type: ignore[return-value]


async def _crash_problem(request: Request, exc: Exception) -> Response:
    return ProblemResponse(500, INTERNAL_ERROR)  # type: ignore[return-value]


__all__ = ["Gateway"]
