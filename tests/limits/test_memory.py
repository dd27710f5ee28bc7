"""The lazily-expiring memory storage through `limits`' own strategies."""

from __future__ import annotations

import asyncio
import time

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from gateway.limits.memory import SCHEME, LazyMemoryStorage


def test_registered_with_limits_and_moving_window_is_exact_and_expires():
    storage = storage_from_string(f"{SCHEME}://")
    assert isinstance(storage, LazyMemoryStorage)
    limiter = MovingWindowRateLimiter(storage)
    item = parse("3/second")

    async def run():
        assert [await limiter.hit(item, "k") for _ in range(4)] == [True, True, True, False]
        assert await limiter.hit(item, "other")  # keys are independent
        stats = await limiter.get_window_stats(item, "k")
        assert stats.remaining == 0 and 0 < stats.reset_time - time.time() <= 1
        assert not await limiter.hit(item, "k", cost=4)  # more than the limit at once
        await asyncio.sleep(1.05)
        assert await limiter.hit(item, "k", cost=3)  # the window moved on: all 3 free
        assert not await limiter.hit(item, "k")

    asyncio.run(run())


def test_sliding_window_counter_and_counters():
    storage = LazyMemoryStorage()
    limiter = SlidingWindowCounterRateLimiter(storage)
    item = parse("5/hour")

    async def run():
        assert [await limiter.hit(item, "k") for _ in range(6)] == [True] * 5 + [False]
        assert (await limiter.get_window_stats(item, "k")).remaining == 0
        assert await storage.incr("c", 1) == 1
        assert await storage.incr("c", 1, amount=2) == 3
        assert await storage.incr("c", 1, amount=-1) == 2
        assert await storage.get("c") == 2
        await asyncio.sleep(1.05)
        assert await storage.get("c") == 0  # expired on access, no timer involved

    asyncio.run(run())


def test_sweep_drops_keys_nobody_touches_again():
    storage = LazyMemoryStorage()
    limiter = MovingWindowRateLimiter(storage)

    async def run():
        for n in range(100):
            await limiter.hit(parse("1/second"), str(n))
            await storage.incr(f"c{n}", 1)
        assert len(storage.events) == 100 and len(storage.counters) == 100
        await asyncio.sleep(1.05)
        storage.next_sweep = 0  # as if SWEEP_INTERVAL had passed
        await limiter.hit(parse("1/second"), "fresh")
        assert list(storage.events) == [parse("1/second").key_for("fresh")]
        assert storage.counters == {}

    asyncio.run(run())


def test_an_expired_counter_starts_again_and_pairs_count_both_keys():
    storage = LazyMemoryStorage()
    assert storage.incr_now("c", 10, 1, 100.0) == 1
    assert storage.incr_now("c", 10, 1, 109.9) == 2
    assert storage.incr_now("c", 10, 1, 110.0) == 1  # expired at 110: a new count
    assert storage.counters["c"] == [1, 120.0]
    assert storage.incr_pair_now("d", 5, "m", 50, 111.0) == (1, 1)
    assert storage.incr_pair_now("d", 5, "m", 50, 116.0) == (1, 2)  # the day ended, not the month
