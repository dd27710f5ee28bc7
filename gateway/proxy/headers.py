"""Header rules of a proxy: hop-by-hop stripping (RFC 9110 §7.6.1), X-Forwarded-*,
and the identity headers only the gateway may set."""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable
from functools import lru_cache

from gateway.config.models import PASSABLE_HEADERS
from gateway.context import Identity
from gateway.types import RawHeaders

HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authenticate",
        b"proxy-authorization",
    }
)
# Set only by the gateway; copies sent by a client are dropped before forwarding.
GATEWAY_OWNED = frozenset(
    {
        b"x-consumer-id",
        b"x-client-id",
        b"x-scopes",
        b"x-consumer-plan",
        b"x-consumer-kind",
        b"x-caller-api",
        b"x-caller-tier",
        b"x-end-user",
        b"x-customer-id",
        b"x-actor",
        b"x-subject-token",
        b"x-forwarded-for",
        b"x-forwarded-proto",
        b"x-forwarded-host",
        b"x-real-ip",
        b"forwarded",
        b"x-request-id",
        b"host",
        b"via",
        b"traceparent",
        b"tracestate",
    }
)
# Headers that make some frameworks take another method or path than the one routed
# and authorised; dropped unless an API lists them in `upstream.pass_headers`.
OVERRIDES = frozenset(name.encode() for name in PASSABLE_HEADERS)


def _underscore_variants(names: Iterable[bytes]) -> frozenset[bytes]:
    """Each name with any of its hyphens written as underscores.

    CGI, WSGI and many frameworks read `x_consumer_id` as X-Consumer-ID
    (HTTP_X_CONSUMER_ID), so the spelling would smuggle an owned header through.
    """
    variants = set()
    for name in names:
        parts = name.split(b"-")
        for joints in itertools.product((b"-", b"_"), repeat=len(parts) - 1):
            joined = parts[0] + b"".join(j + p for j, p in zip(joints, parts[1:], strict=True))
            if joined != name:
                variants.add(joined)
    return frozenset(variants)


# Expect: 100-continue was answered by the gateway's own server; aiohttp would wait
# for a second 100 from the upstream.
_DROP_REQUEST = (
    HOP_BY_HOP
    | GATEWAY_OWNED
    | _underscore_variants(GATEWAY_OWNED)
    | {b"expect"}
    | OVERRIDES
    | _underscore_variants(OVERRIDES)
)
VIA = (b"via", b"1.1 tiergate")


def request_drop_set(passed: Iterable[str] = ()) -> frozenset[bytes]:
    """Request headers never forwarded, less the overrides an API lets through."""
    allowed = {name.encode() for name in passed}
    return _DROP_REQUEST - allowed - _underscore_variants(allowed)


def connection_tokens(headers: RawHeaders) -> frozenset[bytes]:
    """Header names listed in Connection: they are hop-by-hop too."""
    tokens: frozenset[bytes] = frozenset()
    for key, value in headers:
        if key == b"connection":
            tokens |= field_tokens(value)
    return tokens


@lru_cache(maxsize=256)
def field_tokens(value: bytes) -> frozenset[bytes]:
    """The names one Connection field line lists, in lower case.

    Cached: the same few lines (`keep-alive`, `close`) come with nearly every message.
    """
    return frozenset(t.strip().lower() for t in value.split(b",") if t.strip())


def strip_hop_by_hop(headers: RawHeaders, extra: Iterable[bytes] = ()) -> RawHeaders:
    listed = connection_tokens(headers)
    drop = HOP_BY_HOP | listed | frozenset(extra)
    return [(k, v) for k, v in headers if k not in drop]


def identity_headers(identity: Identity, subject_token: bool = True) -> RawHeaders:
    """The verified caller as headers for the upstream. `subject_token`: whether the
    upstream may be handed the user's token, which only an API that calls a tier below
    needs (a system API gets who the user is, never a token to replay)."""
    out = [
        (b"x-consumer-id", identity.consumer_id.encode()),
        (b"x-consumer-kind", identity.kind.encode()),
    ]
    if identity.client_id:
        out.append((b"x-client-id", identity.client_id.encode()))
    if identity.scopes:
        out.append((b"x-scopes", " ".join(sorted(identity.scopes)).encode()))
    if identity.plan:
        out.append((b"x-consumer-plan", identity.plan.encode()))
    if identity.api:
        out.append((b"x-caller-api", identity.api.encode()))
    if identity.tier:
        out.append((b"x-caller-tier", identity.tier.encode()))
    user = identity.end_user
    if user is not None:
        # Who the call is for, who acts for them, and the token the API exchanges (RFC 8693)
        # to call the tier below as them: gateway-owned, like every header above.
        out.append((b"x-end-user", user.username.encode()))
        out.append((b"x-customer-id", user.customer_id.encode()))
        if user.actors:
            out.append((b"x-actor", " ".join(user.actors).encode()))
        if subject_token and user.token:
            out.append((b"x-subject-token", user.token.encode()))
    return out


class ForwardedPolicy:
    """Who the client is, believing X-Forwarded-* only from trusted proxies."""

    def __init__(self, trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> None:
        self._trusted = tuple(trusted)
        self.trusts_any = bool(self._trusted)  # False: no peer is, nothing to look up
        self.is_trusted = lru_cache(maxsize=4096)(self._is_trusted)

    def _is_trusted(self, address: str) -> bool:
        if not self._trusted:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self._trusted)

    def client_ip(self, peer: str, headers: RawHeaders) -> str:
        """Walk X-Forwarded-For from the right while hops are trusted proxies."""
        if not self.trusts_any or not self.is_trusted(peer):
            return peer
        forwarded_for = combined(headers, b"x-forwarded-for")
        if forwarded_for is None:
            return peer
        hops = [h.strip() for h in forwarded_for.decode("latin-1").split(",") if h.strip()]
        for hop in reversed(hops):
            if not self.is_trusted(hop):
                return hop
        return hops[0] if hops else peer

    def forwarded_for(self, peer: str, headers: RawHeaders) -> bytes:
        if self.is_trusted(peer):
            forwarded_for = combined(headers, b"x-forwarded-for")
            if forwarded_for is not None:
                return forwarded_for + b", " + peer.encode()
        return peer.encode()


def combined(headers: RawHeaders, name: bytes) -> bytes | None:
    """Every field line of a list header as one value (RFC 9110 §5.3), or None.

    A proxy may append its own field line rather than extend the last one; reading only
    the first line would let the client's own line choose the address.
    """
    values = [value for key, value in headers if key == name]
    if not values:
        return None
    return values[0] if len(values) == 1 else b", ".join(values)


def nearest(headers: RawHeaders, name: bytes) -> bytes | None:
    """The value the nearest proxy set: the last element of every field line combined.

    A client may send its own line before the trusted proxy's; the first would be its pick.
    """
    value = combined(headers, name)
    if value is None:
        return None
    last = value.rsplit(b",", 1)[-1].strip()
    return last or None
