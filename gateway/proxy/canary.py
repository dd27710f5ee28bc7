"""The canary rule: which requests go to a named target set instead of the default one.

Decided per request from what the client sent (a header value, a cookie value) or,
for a percentage, from a stable hash of the consumer: the consumer id once a policy
has identified the caller, else the client address. The hash is keyed by the API's
name, so the same consumer is not always in every API's canary.
"""

from __future__ import annotations

import hashlib

from gateway.config.targets import CanaryConfig
from gateway.context import RequestContext
from gateway.proxy.balancer import TargetPool

BUCKETS = 10_000  # percent with two decimals


class Canary:
    __slots__ = ("_cookie", "_header", "_salt", "_threshold", "pool")

    def __init__(self, config: CanaryConfig, pool: TargetPool, api_name: str) -> None:
        self.pool = pool
        header = config.header
        self._header = (header.name.encode(), header.value.encode()) if header else None
        cookie = config.cookie
        self._cookie = (cookie.name.encode(), cookie.value.encode()) if cookie else None
        self._threshold = round(config.percent * BUCKETS / 100)
        self._salt = api_name.encode() + b"\x00"

    def matches(self, ctx: RequestContext) -> bool:
        if self._header is not None:
            name, value = self._header
            if any(k == name and v.strip(b" \t") == value for k, v in ctx.headers):
                return True
        if self._cookie is not None and _has_cookie(ctx, *self._cookie):
            return True
        return self._threshold > 0 and self.bucket(ctx) < self._threshold

    def bucket(self, ctx: RequestContext) -> int:
        """The consumer's place in 0..9999, the same on every request and every node."""
        identity = ctx.identity
        key = identity.consumer_id if identity is not None else ctx.client_ip
        digest = hashlib.blake2b(self._salt + key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % BUCKETS


def _has_cookie(ctx: RequestContext, name: bytes, value: bytes) -> bool:
    """Does any Cookie header carry `name=value` (RFC 6265 §5.4 pairs, `; ` separated)?"""
    for key, header in ctx.headers:
        if key != b"cookie":
            continue
        for pair in header.split(b";"):
            cookie_name, sep, cookie_value = pair.strip(b" \t").partition(b"=")
            if sep and cookie_name == name and cookie_value.strip(b'"') == value:
                return True
    return False


__all__ = ["Canary"]
