"""Per-request state shared by the policies and the forwarder."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from gateway.observability.tracecontext import TraceContext
from gateway.routing import Route
from gateway.types import RawHeaders, Receive, Scope, Send


@dataclass(slots=True, frozen=True)
class Identity:
    """Who is calling, as verified by an authentication policy."""

    kind: str  # "client" (OAuth2), "partner" (API key), "service" (a tier API), "user"
    consumer_id: str
    client_id: str | None = None
    scopes: frozenset[str] = frozenset()
    plan: str | None = None
    tier: str | None = None  # for service identities: the tier of the calling API
    api: str | None = None  # for service identities: the calling API's name
    credential_id: str | None = None  # key id or token jti: never the secret itself


ResponseHook = Callable[["RequestContext", int, RawHeaders], Awaitable[None] | None]
# Wraps the request's ASGI channels before forwarding (body limits, body validation, caching).
ChannelWrapper = Callable[[Receive, Send], tuple[Receive, Send]]


@dataclass(slots=True)
class RequestContext:
    scope: Scope
    route: Route
    method: str
    path: str  # normalised, still percent-encoded; what is routed is what is forwarded
    query: bytes
    headers: RawHeaders  # as the client sent them (lower-case names)
    request_id: str
    client_ip: str
    started: float
    identity: Identity | None = None
    upstream_headers: RawHeaders = field(default_factory=list)  # added for the upstream
    response_headers: RawHeaders = field(default_factory=list)  # added for the client
    response_hooks: list[ResponseHook] = field(default_factory=list)
    log: dict[str, object] = field(default_factory=dict)  # extra access-log fields
    trace: TraceContext | None = None  # W3C trace context of this hop
    channel_wrappers: list[ChannelWrapper] = field(default_factory=list)  # applied in order

    def header(self, name: bytes) -> bytes | None:
        """First value of a request header (name in lower case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None
