"""Response cache storage (LRU bounded by bytes) and the component that owns it.

One `ResponseStore` per API that opts in (`response-cache` policy), all reachable
through `gateway.services["response-cache"]` (a `CacheRegistry`), so the admin
API can purge them: `DELETE /admin/cache` (every API) and `DELETE
/admin/cache/{api}`, with `Authorization: Bearer <admin_token>`.

Two stores, chosen per API by the policy's `storage`:

- `ResponseStore` (memory, default): in-process, synchronous (the policy calls it
  without an await), LRU bounded by `max_bytes`; each node caches on its own.
- `RedisResponseStore` (`storage: redis`): asynchronous (redis-py asyncio), shared
  by every node on the same Redis, so a response cached through one node is a hit
  on the others and a purge through any node's admin API reaches all. One Redis
  hash per cache key (`<key_prefix><api>:<sha256 of path, query, consumer>`), one
  field per `Vary` variant; a field holds the serialised entry (JSON head with
  status, headers, wall-clock store time, initial age, lifetime and vary, a
  newline, the raw body). The hash's TTL is the remaining freshness of its
  freshest variant, so Redis memory is bounded by `max_entry_bytes` per variant
  and by freshness. Purge: SCAN `<key_prefix><api>:*` + UNLINK. Redis errors never
  fail a request: a failed lookup is a miss, a failed store is skipped, and both
  count in `errors` (metric `tiergate_response_cache_storage_errors`).

The policy checks `store.is_async` once at build, so the memory path stays free
of awaits.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin.auth import require_admin
from gateway.components import Component
from gateway.problem import ProblemResponse
from gateway.types import RawHeaders

UNKNOWN_API = "API '{api}' has no response cache."
SERVICE = "response-cache"
PURGE_FAILED = "The shared cache (Redis) is unavailable; nothing was purged, try again."
REDIS_FAILED = "response cache: Redis %s failed (%r); serving from upstream"

log = logging.getLogger("tiergate.cache")


@dataclass(slots=True)
class Entry:
    status: int
    headers: RawHeaders
    body: bytes
    stored: float  # monotonic time the response was received
    initial_age: float  # Age the upstream reported
    lifetime: float  # seconds fresh, from s-maxage / max-age / the default
    vary: tuple[tuple[bytes, bytes | None], ...] = ()  # request header values it varies on
    size: int = field(default=0)

    def age(self, now: float) -> float:
        return self.initial_age + (now - self.stored)

    def fresh(self, now: float) -> bool:
        return self.age(now) < self.lifetime


class ResponseStore:
    """Variants per key, least recently used evicted first, bounded by bytes."""

    is_async = False

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._entries: OrderedDict[tuple, list[Entry]] = OrderedDict()

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def get(self, key: tuple, headers: RawHeaders, now: float | None = None) -> Entry | None:
        variants = self._entries.get(key)
        if not variants:
            return None
        now = time.monotonic() if now is None else now
        for entry in variants:
            if all(_value(headers, name) == value for name, value in entry.vary):
                if not entry.fresh(now):
                    self._remove(key, entry)
                    return None
                self._entries.move_to_end(key)
                return entry
        return None

    def put(self, key: tuple, entry: Entry) -> None:
        entry.size = len(entry.body) + sum(len(k) + len(v) for k, v in entry.headers) + 200
        if entry.size > self.max_bytes:
            return
        variants = self._entries.setdefault(key, [])
        for old in [v for v in variants if v.vary == entry.vary]:
            self._remove(key, old)
        self._entries.setdefault(key, []).append(entry)
        self._entries.move_to_end(key)
        self.bytes += entry.size
        while self.bytes > self.max_bytes and self._entries:
            oldest_key, oldest = next(iter(self._entries.items()))
            self._remove(oldest_key, oldest[0])

    def _remove(self, key: tuple, entry: Entry) -> None:
        variants = self._entries.get(key, [])
        if entry in variants:
            variants.remove(entry)
            self.bytes -= entry.size
        if not variants:
            self._entries.pop(key, None)

    def clear(self) -> int:
        count = len(self)
        self._entries.clear()
        self.bytes = 0
        return count


def _value(headers: RawHeaders, name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def _serialise(entry: Entry) -> bytes:
    head = {
        "status": entry.status,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in entry.headers],
        "stored": time.time() - (time.monotonic() - entry.stored),  # wall clock
        "initial_age": entry.initial_age,
        "lifetime": entry.lifetime,
        "vary": [
            [n.decode("latin-1"), None if v is None else v.decode("latin-1")] for n, v in entry.vary
        ],
    }
    return json.dumps(head, separators=(",", ":")).encode() + b"\n" + entry.body


def _deserialise(data: bytes) -> Entry:
    head_bytes, _, body = data.partition(b"\n")
    head = json.loads(head_bytes)
    return Entry(
        status=head["status"],
        headers=[(k.encode("latin-1"), v.encode("latin-1")) for k, v in head["headers"]],
        body=body,
        stored=time.monotonic() - (time.time() - head["stored"]),  # back to monotonic
        initial_age=head["initial_age"],
        lifetime=head["lifetime"],
        vary=tuple(
            (n.encode("latin-1"), None if v is None else v.encode("latin-1"))
            for n, v in head["vary"]
        ),
        size=len(data),
    )


def _variant(vary: tuple[tuple[bytes, bytes | None], ...]) -> bytes:
    return b"\x00".join(n + b"=" + (b"\x01" if v is None else v) for n, v in vary)


class StoreUnavailable(Exception):
    """A purge could not reach the shared store."""


class RedisResponseStore:
    """One API's entries in a Redis shared by every node (see the module docstring).

    redis-py is imported only here (it pulls in OpenTelemetry): memory-only gateways
    never load it."""

    is_async = True

    def __init__(
        self, client: Callable[[], Any], prefix: str, max_entry_bytes: int, timeout: float
    ) -> None:
        self.client = client  # the redis client of the running event loop
        self.prefix = prefix  # "<key_prefix><api>:"
        self.max_entry_bytes = max_entry_bytes
        self.timeout = timeout
        self.errors = 0  # lookups/stores/purges that met an unavailable Redis
        from redis.exceptions import RedisError

        self._errors = (RedisError, OSError, TimeoutError)

    def _key(self, key: tuple) -> str:
        return self.prefix + hashlib.sha256(repr(key).encode()).hexdigest()

    def _failed(self, what: str, exc: BaseException) -> None:
        self.errors += 1
        log.warning(REDIS_FAILED, what, exc)

    async def get(self, key: tuple, headers: RawHeaders) -> Entry | None:
        try:
            async with asyncio.timeout(self.timeout):
                variants = await self.client().hgetall(self._key(key))
        except self._errors as exc:
            self._failed("lookup", exc)
            return None
        now = time.monotonic()
        for data in variants.values():
            entry = _deserialise(data)
            if all(_value(headers, name) == value for name, value in entry.vary):
                return entry if entry.fresh(now) else None
        return None

    async def put(self, key: tuple, entry: Entry) -> None:
        data = _serialise(entry)
        remaining = entry.lifetime - entry.age(time.monotonic())
        if len(data) > self.max_entry_bytes or remaining <= 0:
            return
        name = self._key(key)
        try:
            async with asyncio.timeout(self.timeout):
                pipe = self.client().pipeline(transaction=True)
                pipe.hset(name, _variant(entry.vary), data)
                pipe.expire(name, max(1, int(remaining + 0.999)), gt=True)
                pipe.expire(name, max(1, int(remaining + 0.999)), nx=True)
                await pipe.execute()
        except self._errors as exc:
            self._failed("store", exc)

    async def clear(self) -> int:
        """SCAN + UNLINK every key of this API; the number of cache keys removed."""
        count = 0
        try:
            async with asyncio.timeout(max(self.timeout, 10)):
                client = self.client()
                batch: list[Any] = []
                async for name in client.scan_iter(match=self.prefix + "*", count=500):
                    batch.append(name)
                    if len(batch) >= 500:
                        count += await client.unlink(*batch)
                        batch.clear()
                if batch:
                    count += await client.unlink(*batch)
        except self._errors as exc:
            self._failed("purge", exc)
            raise StoreUnavailable(str(exc)) from exc
        return count


class CacheRegistry:
    """The stores of every API with a response cache, by API name."""

    def __init__(self) -> None:
        self.stores: dict[str, ResponseStore | RedisResponseStore] = {}
        # one redis client per URL and event loop (the admin listener may run on its own loop)
        self.clients: dict[tuple[str, float, asyncio.AbstractEventLoop], Any] = {}

    def store(self, api: str, max_bytes: int) -> ResponseStore:
        store = self.stores.get(api)
        if not isinstance(store, ResponseStore) or store.max_bytes != max_bytes:
            store = self.stores[api] = ResponseStore(max_bytes)
        return store

    def redis_store(
        self, api: str, url: str, prefix: str, max_entry_bytes: int, timeout: float
    ) -> RedisResponseStore:
        from redis.asyncio import Redis

        def client() -> Any:
            key = (url, timeout, asyncio.get_running_loop())
            found = self.clients.get(key)
            if found is None:
                found = self.clients[key] = Redis.from_url(
                    url, socket_timeout=timeout, socket_connect_timeout=timeout
                )
            return found

        store = RedisResponseStore(client, f"{prefix}{api}:", max_entry_bytes, timeout)
        self.stores[api] = store
        return store

    @property
    def errors(self) -> int:
        return sum(getattr(store, "errors", 0) for store in self.stores.values())

    async def purge(self, api: str | None = None) -> int:
        stores = self.stores.values() if api is None else [self.stores[api]]
        count = 0
        for store in stores:
            count += await store.clear() if isinstance(store, RedisResponseStore) else store.clear()
        return count

    async def close(self) -> None:
        """Close the clients of the running loop (the others go with their loops)."""
        loop = asyncio.get_running_loop()
        for key in [k for k in self.clients if k[2] is loop]:
            await self.clients.pop(key).aclose()


class CacheComponent(Component):
    name = "response-cache"

    def __init__(self, gateway: object) -> None:
        super().__init__(gateway)  # type: ignore[arg-type]
        self.registry = CacheRegistry()
        self.gateway.services[SERVICE] = self.registry

    def admin_routes(self) -> list[BaseRoute]:
        token = self.gateway.config.admin_token
        return [
            Route("/admin/cache", require_admin(token, self._purge_all), methods=["DELETE"]),
            Route("/admin/cache/{api}", require_admin(token, self._purge_api), methods=["DELETE"]),
        ]

    async def stop(self) -> None:
        await self.registry.close()

    async def _purge_all(self, request: Request) -> Response:
        try:
            return JSONResponse({"purged": await self.registry.purge()})
        except StoreUnavailable:
            return ProblemResponse(503, PURGE_FAILED)  # type: ignore[return-value]

    async def _purge_api(self, request: Request) -> Response:
        api = request.path_params["api"]
        if api not in self.registry.stores:
            return ProblemResponse(404, UNKNOWN_API.format(api=api))  # type: ignore[return-value]
        try:
            return JSONResponse({"api": api, "purged": await self.registry.purge(api)})
        except StoreUnavailable:
            return ProblemResponse(503, PURGE_FAILED)  # type: ignore[return-value]


__all__ = ["CacheComponent", "CacheRegistry", "Entry", "RedisResponseStore", "ResponseStore"]
