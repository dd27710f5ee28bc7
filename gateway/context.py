"""Per-request state shared by the policies and the forwarder."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from gateway.observability.tracecontext import TraceContext
from gateway.routing import Route
from gateway.types import RawHeaders, Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.operations import ResolvedOperation


@dataclass(slots=True, frozen=True)
class EndUser:
    """The signed-in person a built-in token speaks for (its `customer_id` claim), and the
    services acting for them by token exchange, nearest first (its `act` chain)."""

    username: str
    customer_id: str
    actors: tuple[str, ...] = ()
    token: str = field(default="", repr=False)  # passed on so the API can exchange it


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
    operations: frozenset[str] | None = None  # an API key's operation grants; None: all
    # A verified token's claims (customer_id, act, ...); None for API keys.
    claims: Mapping[str, Any] | None = field(default=None, compare=False)
    end_user: EndUser | None = None  # built-in tokens of a signed-in user


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
    operation: ResolvedOperation | None = None  # None only for an API without a contract
    identity: Identity | None = None  # set by the authorize policy from `credentials`
    # Verified credentials by kind ("bearer", "apiKey"), set by the authentication policies.
    credentials: dict[str, Identity] | None = None
    # The first credential that failed: (kind, sentence); authorize turns it into the 401.
    auth_error: tuple[str, str] | None = None
    upstream_headers: RawHeaders = field(default_factory=list)  # added for the upstream
    response_headers: RawHeaders = field(default_factory=list)  # added for the client
    channel_wrappers: list[ChannelWrapper] = field(default_factory=list)  # see channels.py
    response_hooks: list[ResponseHook] = field(default_factory=list)
    log: dict[str, object] = field(default_factory=dict)  # extra access-log fields
    trace: TraceContext | None = None  # W3C trace context of this hop

    def header(self, name: bytes) -> bytes | None:
        """First value of a request header (name in lower case)."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


# Called after every API request with its context and status: metrics, data flow, spans.
Observer = Callable[[RequestContext, int], None]
# Called with (method, status) for every request no API handled, the listener's refusals
# included (method ""): metrics count them under api="".
UnroutedObserver = Callable[[str, int], None]
