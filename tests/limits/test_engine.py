"""The limiter's storage selection: one config URL → the right `limits` storage."""

from __future__ import annotations

import asyncio

import pytest

from gateway.limits.config import RateLimitingConfig
from gateway.limits.engine import Limiter
from gateway.limits.memory import LazyMemoryStorage


@pytest.mark.parametrize(
    ("url", "storage", "remote"),
    [
        ("memory://", "LazyMemoryStorage", False),
        ("async+memory://", "MemoryStorage", False),
        ("redis://127.0.0.1:6379/0", "RedisStorage", True),
        ("rediss://127.0.0.1:6380/0", "RedisStorage", True),
        ("redis+sentinel://127.0.0.1:26379/mymaster", "RedisSentinelStorage", True),
        ("redis+cluster://127.0.0.1:7000,127.0.0.1:7001", "RedisClusterStorage", True),
    ],
)
def test_storage_urls_select_limits_storages(url, storage, remote):
    async def build():
        limiter = Limiter(url, RateLimitingConfig())
        await limiter.aclose()
        return limiter

    limiter = asyncio.run(build())
    assert type(limiter.storage).__name__ == storage
    assert limiter.remote is remote
    if url == "memory://":
        assert isinstance(limiter.storage, LazyMemoryStorage)
