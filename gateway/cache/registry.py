"""The stores of every API with a response cache: what the admin purge reaches."""

from __future__ import annotations

import asyncio
from typing import Any

from gateway.cache.redis_store import RedisResponseStore
from gateway.cache.store import ResponseStore


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
        # Optional heavy dependency: redis-py pulls in OpenTelemetry; memory-only gateways
        # never load it.
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
