"""Policy `response-cache`: shared caching of safe responses for APIs that opt in.

- GET and HEAD only (HEAD is answered from a cached GET); `Cache-Control` of the
  request (`no-store` bypasses, `no-cache` skips the lookup) and of the response
  (`no-store`, `private`, `no-cache` are never stored; `s-maxage` beats
  `max-age`, else `default_ttl`, else not stored) are honoured; `Vary` keys
  variants (`Vary: *` is not stored); a response with `Set-Cookie` is not stored.
- A cached `ETag` answers a matching `If-None-Match` with 304 from the cache.
- Hits carry `Age` and `X-Cache: HIT`; misses `X-Cache: MISS`.
- Authenticated requests (Authorization or X-API-Key, or `ctx.identity` set)
  bypass the cache entirely, unless `shareable_per_consumer` is set: then the
  verified consumer is part of the key, so consumers never see each other's data.
- Entries are keyed by the resolved operation's path (decoded, no trailing slash), so
  every spelling of one resource shares one entry; `operations` sets rules per
  operation (operationId or `"METHOD /template"`, checked against the contract).
- Memory is bounded per API (`max_bytes`, least recently used evicted first);
  purge through the admin API (gateway/admin/cache.py).
- `storage: redis` shares the entries between gateway nodes (gateway/cache/redis_store.py
  `RedisResponseStore`); `redis_url` defaults to `limits_storage` when that is a
  Redis URL. A Redis error is a miss (the request goes upstream), never a failure.
"""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from gateway.cache.redis_store import RedisResponseStore
from gateway.cache.registry import CacheRegistry
from gateway.cache.store import Entry, ResponseStore
from gateway.config.base import StrictModel
from gateway.context import RequestContext
from gateway.pipeline import PRIORITY, BuildContext, PolicySpec
from gateway.types import Message, RawHeaders, Receive, Scope, Send

ENTRY_TOO_BIG = "max_entry_bytes ({entry}) must not exceed max_bytes ({total})"
REDIS_URL_REQUIRED = (
    "@redis_url: storage is redis but no redis_url is set and limits_storage "
    "({storage!r}) is not a Redis URL; set redis_url: redis://host:port/db"
)
BAD_REDIS_URL = "@redis_url: {url!r} is not a Redis URL; use redis://host:port/db or rediss://"
REDIS_SCHEMES = ("redis", "rediss", "unix")
HIT = (b"x-cache", b"HIT")
MISS = (b"x-cache", b"MISS")
_SAFE = frozenset({"GET", "HEAD"})
_PER_REQUEST = frozenset({b"x-request-id", b"age", b"x-cache", b"connection"})


class OperationCacheRule(StrictModel):
    """How one operation is cached."""

    cache: bool = Field(True, description="false: never store or serve this operation's answers.")
    default_ttl: float | None = Field(
        None,
        ge=0,
        le=86400,
        description="Freshness for this operation when the upstream gives none.",
    )


class ResponseCacheConfig(StrictModel):
    max_bytes: int = Field(
        64 << 20, ge=1024, le=1 << 34, description="Memory for this API's entries (LRU)."
    )
    max_entry_bytes: int = Field(
        1 << 20, ge=1, description="Responses larger than this are not stored."
    )
    default_ttl: float = Field(
        0, ge=0, le=86400, description="Freshness when the upstream gives no max-age; 0: none."
    )
    statuses: list[int] = Field(
        default_factory=lambda: [200, 203, 204, 300, 301, 404, 410],
        description="Statuses that may be stored.",
    )
    shareable_per_consumer: bool = Field(
        False,
        description="Cache authenticated responses too, keyed by the verified consumer.",
    )
    storage: Literal["memory", "redis"] = Field(
        "memory", description="memory (per node) or redis (shared by every node)."
    )
    redis_url: str | None = Field(
        None,
        description="Redis for storage: redis; default: limits_storage when it is a Redis URL.",
    )
    operations: dict[str, OperationCacheRule] = Field(
        default_factory=dict,
        description="operationId or 'METHOD /template' of the contract (checked at load) → rules.",
    )
    key_prefix: str = Field(
        "tiergate:cache:", description="Redis key prefix; keys are <prefix><api>:<hash>."
    )
    redis_timeout: float = Field(
        0.25, gt=0, le=10, description="Seconds a Redis call may take before it counts as a miss."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_redis_url(cls, data: Any, info: ValidationInfo) -> Any:
        gateway = (info.context or {}).get("config")
        wants_default = isinstance(data, dict) and data.get("storage") == "redis"
        if wants_default and gateway is not None and data.get("redis_url") is None:
            data = {**data, "redis_url": _limits_redis_url(gateway.limits_storage)}
        return data

    def operation_references(self) -> list[tuple[str, str]]:
        """(field, operation name) pairs, checked against the contract at load."""
        return [(f"operations.{key}", key) for key in self.operations]

    @model_validator(mode="after")
    def _sizes(self) -> ResponseCacheConfig:
        if self.max_entry_bytes > self.max_bytes:
            raise ValueError(ENTRY_TOO_BIG.format(entry=self.max_entry_bytes, total=self.max_bytes))
        if self.redis_url is not None and _redis_url(self.redis_url) is None:
            raise ValueError(BAD_REDIS_URL.format(url=self.redis_url))
        return self


def _redis_url(url: str) -> str | None:
    """`url` as redis-py takes it (`async+redis://` of limits becomes `redis://`), or None."""
    url = url.removeprefix("async+")
    scheme, sep, _ = url.partition("://")
    return url if sep and scheme in REDIS_SCHEMES else None


def _limits_redis_url(limits_storage: str) -> str:
    """The default redis_url: limits_storage when it is a Redis URL; ValueError if not."""
    url = _redis_url(limits_storage)
    if url is None:
        raise ValueError(REDIS_URL_REQUIRED.format(storage=limits_storage))
    return url


class ResponseCachePolicy:
    def __init__(
        self,
        config: ResponseCacheConfig,
        store: ResponseStore | RedisResponseStore,
        rules: dict[int, OperationCacheRule] | None = None,
    ) -> None:
        self.store = store
        self.rules = rules or {}  # operation index → its rule
        self.is_async = store.is_async  # checked once: no awaits on the memory path
        self.max_entry = config.max_entry_bytes
        self.default_ttl = config.default_ttl
        self.statuses = frozenset(config.statuses)
        self.per_consumer = config.shareable_per_consumer

    async def __call__(self, ctx: RequestContext) -> Any:
        if ctx.method not in _SAFE:
            return None
        resolved = ctx.operation
        ttl = self.default_ttl
        if resolved is not None and self.rules:
            rule = self.rules.get(resolved.index)
            if rule is not None:
                if not rule.cache:
                    return None
                if rule.default_ttl is not None:
                    ttl = rule.default_ttl
        consumer = None
        if ctx.identity is not None or ctx.header(b"authorization") or ctx.header(b"x-api-key"):
            if not self.per_consumer or ctx.identity is None:
                ctx.log["cache"] = "bypass"
                return None
            consumer = ctx.identity.consumer_id
        directives = _directives(ctx.header(b"cache-control"))
        if "no-store" in directives:
            ctx.log["cache"] = "bypass"
            return None
        # One resource, one entry: /x, /x/ and /%78 resolve to the same operation path.
        key = (resolved.path if resolved is not None else ctx.path, ctx.query, consumer)
        if "no-cache" not in directives:
            if self.is_async:
                entry = await self.store.get(key, ctx.headers)  # type: ignore[misc]
            else:
                entry = self.store.get(key, ctx.headers)
            if entry is not None:
                ctx.log["cache"] = "hit"
                return _Hit(entry, ctx)
        ctx.log["cache"] = "miss"
        ctx.response_headers.append(MISS)
        if ctx.method == "GET":
            ctx.channel_wrappers.append(self._recorder(ctx, key, ttl))
        return None

    def _recorder(self, ctx: RequestContext, key: tuple, ttl: float) -> Any:
        def wrap(receive: Receive, send: Send) -> tuple[Receive, Send]:
            pending: dict[str, Any] = {}

            async def send_recording(message: Message) -> None:
                # Recorded before sending: the next request may arrive as soon as this is out.
                entry = record(message)
                if entry is not None:
                    await self.store.put(key, entry)  # type: ignore[misc]
                await send(message)

            def record(message: Message) -> Entry | None:
                if message["type"] == "http.response.start":
                    started = self._storable(ctx, message, ttl)
                    if started is not None:
                        pending.update(started, parts=[], size=0)
                elif pending and message["type"] == "http.response.body":
                    chunk = message.get("body", b"")
                    pending["size"] += len(chunk)
                    if pending["size"] > self.max_entry:
                        pending.clear()
                        return None
                    pending["parts"].append(chunk)
                    if not message.get("more_body", False):
                        entry = _entry(pending)
                        pending.clear()
                        if self.is_async:
                            return entry  # stored (awaited) by send_recording
                        self.store.put(key, entry)
                return None

            return receive, send_recording

        return wrap

    def _storable(
        self, ctx: RequestContext, message: Message, default_ttl: float
    ) -> dict[str, Any] | None:
        status = message["status"]
        if status not in self.statuses:
            return None
        headers: RawHeaders = message.get("headers", [])
        directives = _directives(_get(headers, b"cache-control"))
        if directives.keys() & {"no-store", "private", "no-cache"} or _get(headers, b"set-cookie"):
            return None
        shared = _seconds(directives.get("s-maxage"))
        own = _seconds(directives.get("max-age"))
        lifetime: float = shared if shared is not None else own if own is not None else default_ttl
        per_request = set(ctx.response_headers)  # CORS etc.: recomputed on every hit
        kept = [h for h in headers if h[0] not in _PER_REQUEST and h not in per_request]
        vary = [
            name.strip().lower()
            for key, value in kept
            if key == b"vary"
            for name in value.split(b",")
            if name.strip()
        ]
        if not lifetime or b"*" in vary:
            return None
        return {
            "status": status,
            "headers": kept,
            "lifetime": lifetime,
            "initial_age": _seconds(_get(headers, b"age")) or 0,
            "vary": tuple((name, ctx.header(name)) for name in vary),
        }


def _entry(pending: dict[str, Any]) -> Entry:
    return Entry(
        status=pending["status"],
        headers=pending["headers"],
        body=b"".join(pending["parts"]),
        stored=time.monotonic(),
        initial_age=pending["initial_age"],
        lifetime=pending["lifetime"],
        vary=pending["vary"],
    )


class _Hit:
    """A cached response (or 304 for a matching If-None-Match), with Age and X-Cache."""

    def __init__(self, entry: Entry, ctx: RequestContext) -> None:
        self.entry = entry
        self.head = ctx.method == "HEAD"
        etag = _get(entry.headers, b"etag")
        match = ctx.header(b"if-none-match")
        self.not_modified = bool(etag and match and _etag_matches(match, etag))
        self.status = 304 if self.not_modified else entry.status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        entry = self.entry
        age = str(int(entry.age(time.monotonic()))).encode()
        headers = [*entry.headers, (b"age", age), HIT]
        if self.not_modified:
            headers = [h for h in headers if h[0] not in (b"content-length", b"content-type")]
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        body = b"" if self.head or self.not_modified else entry.body
        await send({"type": "http.response.body", "body": body})


def _etag_matches(header: bytes, etag: bytes) -> bool:
    if header.strip() == b"*":
        return True
    weak = etag.removeprefix(b"W/")
    return any(tag.strip().removeprefix(b"W/") == weak for tag in header.split(b","))


def _directives(value: bytes | None) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    if value:
        for part in value.decode("latin-1").split(","):
            name, _, arg = part.strip().partition("=")
            if name:
                out[name.lower()] = arg.strip('"') or None
    return out


def _seconds(value: str | bytes | None) -> int | None:
    if value is None:
        return None
    text = (value.decode("latin-1") if isinstance(value, bytes) else value).strip()
    # ASCII digits only: str.isdigit() also takes "²", which int() refuses.
    return int(text) if text.isascii() and text.isdigit() else None


def _get(headers: RawHeaders, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _rules(config: ResponseCacheConfig, ctx: BuildContext) -> dict[int, OperationCacheRule]:
    rules = {}
    for reference, rule in config.operations.items():
        operation = ctx.contract.find(reference) if ctx.contract is not None else None
        if operation is None:
            raise ValueError(f"response-cache: {reference!r} names no operation of {ctx.api.name}")
        rules[operation.index] = rule
    return rules


def build(config: ResponseCacheConfig, ctx: BuildContext) -> ResponseCachePolicy:
    registry = ctx.services.response_cache
    if registry is None:
        registry = CacheRegistry()  # no cache component: works, but cannot be purged
    if config.storage == "redis":
        url = config.redis_url or _limits_redis_url(ctx.config.limits_storage)
        store = registry.redis_store(
            ctx.api.name, url, config.key_prefix, config.max_entry_bytes, config.redis_timeout
        )
        return ResponseCachePolicy(config, store, _rules(config, ctx))
    return ResponseCachePolicy(
        config, registry.store(ctx.api.name, config.max_bytes), _rules(config, ctx)
    )


SPEC = PolicySpec(
    name="response-cache",
    priority=PRIORITY["response-cache"],
    config_model=ResponseCacheConfig,
    build=build,
    description="Caches safe responses honouring Cache-Control, Vary and ETag.",
    needs=("response_cache",),
)
