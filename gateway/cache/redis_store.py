"""The response store shared by every node on the same Redis (see gateway/cache/__init__.py)."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from typing import Any

from gateway.cache.store import Entry, deserialise, header_value, serialise
from gateway.types import RawHeaders

REDIS_FAILED = "response cache: Redis %s failed (%r); serving from upstream"

log = logging.getLogger("tiergate.cache")


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
        # Optional heavy dependency (see the class docstring).
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
            entry = deserialise(data)
            if all(header_value(headers, name) == value for name, value in entry.vary):
                return entry if entry.fresh(now) else None
        return None

    async def put(self, key: tuple, entry: Entry) -> None:
        data = serialise(entry)
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
