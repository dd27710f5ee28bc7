"""`api-key`: partner keys in the `X-API-Key` header, looked up by SHA-256 in the registry.

Config:

    policies:
      api-key: {}            # or {allow_query: false, cache_ttl: 5}

Keys look like `tg_<8-char prefix>_<43-char secret>`; the registry stores only the
SHA-256 hex of the whole key (`Services.registry.api_key_by_hash`).

This policy verifies a key when one is sent and records it in `ctx.credentials["apiKey"]`
with its grants (scopes, operations); a key that is not valid for this API is refused
with 403 here. Whether the operation accepts a key at all, and with which scopes, is
decided by the `authorize` policy from the contract: a key satisfies only an operation
whose security lists an apiKey scheme. Lookups are
cached for at most 5 s, so a revocation reaches every node within 5 s; misses are
cached briefly too. Only the prefix is ever logged, and the key never reaches the
upstream.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlencode

from pydantic import Field

from gateway.config.base import StrictModel
from gateway.context import Identity, RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.problem import ProblemResponse
from gateway.registry.credentials import api_key_prefix, hash_credential
from gateway.types import ASGIApp

logger = logging.getLogger("tiergate.api_key")

HEADER = b"x-api-key"
QUERY_NAMES = frozenset({"api_key", "apikey", "api-key", "x-api-key", "x_api_key"})


class ApiKeyConfig(StrictModel):
    allow_query: bool = Field(
        False,
        description="Also accept the key in the `query_param` query parameter. Off by default: "
        "URLs end up in logs, proxies and browser history.",
    )
    query_param: str = Field(
        "api_key", pattern=r"^[A-Za-z0-9_.-]{1,64}$", description="Query parameter, if allowed."
    )
    cache_ttl: float = Field(
        5.0, gt=0, le=5, description="Seconds a looked-up key is trusted; revocation delay."
    )
    negative_cache_ttl: float = Field(
        1.0, ge=0, le=5, description="Seconds an unknown key is remembered as unknown."
    )
    cache_size: int = Field(10_000, ge=1, le=1_000_000, description="Keys cached (LRU).")
    usage_interval: float = Field(
        30.0,
        ge=0,
        le=3600,
        description="Seconds between batched writes of keys' last-used times to the registry; "
        "0 turns usage recording off.",
    )


# -- error texts ----------------------------------------------------------------------------

CHALLENGE = ("www-authenticate", 'APIKey realm="tiergate", header="X-API-Key"')
KEY_IN_QUERY = (
    "API keys are accepted only in the X-API-Key header, never in the query string "
    "(URLs are logged and cached); send it as X-API-Key, and rotate it if this URL was shared."
)
MANY_KEYS = "Send exactly one X-API-Key header."
MALFORMED = "The API key is not well-formed; keys look like tg_<prefix>_<secret>."
UNKNOWN = "The API key is not valid."
REVOKED = "The API key {prefix} has been revoked."
EXPIRED = "The API key {prefix} has expired; use its replacement."
WRONG_API = "The API key {prefix} is not valid for API '{api}'."
STORE_DOWN = "API keys cannot be checked right now; try again shortly."


@dataclass(frozen=True, slots=True)
class _Key:
    """A registry record reduced to what the hot path needs."""

    prefix: str
    identity: Identity
    apis: frozenset[str]
    expires_at: float | None
    revoked: bool


class ApiKeyPolicy:
    def __init__(self, config: ApiKeyConfig, build: BuildContext) -> None:
        registry = build.services.registry
        if registry is None:
            raise RuntimeError("the api-key policy needs the registry (Services.registry is None)")
        self.registry = registry
        self.api = build.api.name
        self.allow_query = config.allow_query
        self.query_param = config.query_param
        self.ttl = config.cache_ttl
        self.negative_ttl = config.negative_cache_ttl
        self.cache_size = config.cache_size
        self.cache: OrderedDict[str, tuple[float, _Key | None]] = OrderedDict()
        self.pending: dict[str, asyncio.Future[_Key | None]] = {}
        self.usage_interval = config.usage_interval
        self.used: dict[str, float] = {}  # key id → last use (epoch seconds), not yet written
        self.flush_at = time.monotonic() + config.usage_interval
        self.writes: set[asyncio.Task[None]] = set()

    async def __call__(self, ctx: RequestContext) -> ASGIApp | None:
        key: str | None = None
        count = 0
        for name, value in ctx.headers:
            if name == HEADER:
                count += 1
                key = value.decode("latin-1").strip()
        if count > 1:
            return _unauthorized(MANY_KEYS)
        if ctx.query and b"key" in ctx.query.lower():
            key, refused = self._from_query(ctx, key)
            if refused is not None:
                return refused
        if key is None:
            return None  # authorize decides whether the operation needed one
        if count:
            ctx.headers = [h for h in ctx.headers if h[0] != HEADER]  # hide the credential
        prefix = api_key_prefix(key)
        if prefix is None:
            ctx.auth_error = ("apiKey", MALFORMED)
            return None
        ctx.log["key_prefix"] = prefix
        try:
            found = await self._lookup(hash_credential(key))
        except Exception as error:
            logger.warning("API key lookup failed for prefix %s: %s", prefix, type(error).__name__)
            return ProblemResponse(503, STORE_DOWN, headers=[("retry-after", "5")])
        failure = _failure(found, prefix)
        if failure is not None:
            ctx.auth_error = ("apiKey", failure)
            return None
        assert found is not None
        if self.api not in found.apis:
            return ProblemResponse(403, WRONG_API.format(prefix=prefix, api=self.api))
        if ctx.credentials is None:
            ctx.credentials = {"apiKey": found.identity}
        else:
            ctx.credentials["apiKey"] = found.identity
        if self.usage_interval:
            self._record_use(found)
        return None

    def _from_query(
        self, ctx: RequestContext, key: str | None
    ) -> tuple[str | None, ProblemResponse | None]:
        """Refuse a key in the query string, or (allow_query) take it and strip it."""
        pairs = parse_qsl(ctx.query.decode("latin-1"), keep_blank_values=True)
        names = {name.lower() for name, _ in pairs}
        if not self.allow_query:
            if names & QUERY_NAMES:
                return key, _unauthorized(KEY_IN_QUERY)
            return key, None
        if self.query_param.lower() not in names:
            return key, None
        kept = [(n, v) for n, v in pairs if n.lower() != self.query_param.lower()]
        from_query = [v for n, v in pairs if n.lower() == self.query_param.lower()]
        if len(from_query) > 1 or (key is not None and from_query):
            return key, _unauthorized(MANY_KEYS)
        ctx.query = urlencode(kept).encode("latin-1")
        return from_query[0], None

    def _record_use(self, found: _Key) -> None:
        """Remember the use; every usage_interval, write the batch in the background."""
        assert found.identity.credential_id is not None
        self.used[found.identity.credential_id] = time.time()
        now = time.monotonic()
        if now < self.flush_at:
            return
        self.flush_at = now + self.usage_interval
        batch, self.used = self.used, {}
        task = asyncio.ensure_future(self._write_usage(batch))
        self.writes.add(task)
        task.add_done_callback(self.writes.discard)

    async def _write_usage(self, batch: dict[str, float]) -> None:
        try:
            await self.registry.mark_api_keys_used(batch)
        except Exception as error:  # usage is informational: never fail a request for it
            logger.warning("recording API key usage failed: %s", type(error).__name__)

    async def _lookup(self, digest: str) -> _Key | None:
        now = time.monotonic()
        cached = self.cache.get(digest)
        if cached is not None and cached[0] > now:
            return cached[1]
        pending = self.pending.get(digest)
        if pending is None:  # one registry query per key at a time, however many requests
            pending = asyncio.ensure_future(self._fetch(digest))
            self.pending[digest] = pending
            pending.add_done_callback(lambda _: self.pending.pop(digest, None))
        return await asyncio.shield(pending)

    async def _fetch(self, digest: str) -> _Key | None:
        # The TTL counts from the query's start: an answer read just before a revocation
        # and returned after it is trusted no longer than `ttl` past the revocation.
        started = time.monotonic()
        record = await self.registry.api_key_by_hash(digest)
        found = None if record is None else _reduce(record)
        ttl = self.ttl if found is not None else self.negative_ttl
        if ttl:
            self.cache[digest] = (started + ttl, found)
            self.cache.move_to_end(digest)
            if len(self.cache) > self.cache_size:
                self.cache.popitem(last=False)
        return found


def _failure(found: _Key | None, prefix: str) -> str | None:
    """Why a looked-up key is not a valid credential, or None."""
    if found is None or not hmac.compare_digest(found.prefix, prefix):
        return UNKNOWN
    if found.revoked:
        return REVOKED.format(prefix=prefix)
    if found.expires_at is not None and found.expires_at <= time.time():
        return EXPIRED.format(prefix=prefix)
    return None


def _reduce(record: Any) -> _Key:
    return _Key(
        prefix=str(record.prefix),
        identity=Identity(
            kind="partner",
            consumer_id=str(record.consumer_id),
            plan=record.plan,
            credential_id=str(record.id),
            scopes=record.scopes,
            operations=record.operations,
        ),
        apis=frozenset(record.apis),
        expires_at=_timestamp(record.expires_at),
        revoked=record.revoked_at is not None,
    )


def _timestamp(value: datetime | float | None) -> float | None:
    if value is None or isinstance(value, int | float):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)  # the registry stores UTC
    return value.timestamp()


def _unauthorized(detail: str) -> ProblemResponse:
    return ProblemResponse(401, detail, headers=[CHALLENGE])


def build(config: ApiKeyConfig, ctx: BuildContext) -> ApiKeyPolicy:
    return ApiKeyPolicy(config, ctx)


SPEC = PolicySpec(
    name="api-key",
    priority=PRIORITY["api-key"],
    config_model=ApiKeyConfig,
    build=build,
    description="Partner API keys in X-API-Key, hashed lookup, scoped to APIs, bound to a plan.",
    needs=("registry",),
)
