"""An in-process `limits` storage that expires lazily, on access.

`limits.aio.storage.MemoryStorage` schedules a sweep task on every hit and hops to
a thread (`asyncio.to_thread`) per moving-window key; the sync one starts a
`threading.Timer`. Both cost far more than the counting itself under load. This
storage does no background work: a key's stale entries are dropped when the key is
touched, and a full sweep runs at most once per `SWEEP_INTERVAL` on the caller's
turn, which bounds memory for keys that are never touched again.

Every method runs without awaiting anything in between, so on one event loop each
operation, `hit()` included, is atomic. Registered with `limits` under the scheme
`async+tiergate-memory://`; `memory://` in Tiergate's config selects it.
"""

from __future__ import annotations

import time
from collections import deque
from math import floor

from limits.aio.storage import MovingWindowSupport, SlidingWindowCounterSupport, Storage
from limits.storage.base import TimestampedSlidingWindow

SCHEME = "async+tiergate-memory"
SWEEP_INTERVAL = 60.0


class LazyMemoryStorage(
    Storage, MovingWindowSupport, SlidingWindowCounterSupport, TimestampedSlidingWindow
):
    STORAGE_SCHEME = [SCHEME]

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **_: object) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions)
        self.counters: dict[str, list[float]] = {}  # key -> [count, expires_at]
        self.events: dict[str, tuple[deque[float], float]] = {}  # key -> (times, window)
        self.next_sweep = time.time() + SWEEP_INTERVAL

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    # -- housekeeping ---------------------------------------------------------

    def _sweep(self, now: float) -> None:
        self.next_sweep = now + SWEEP_INTERVAL
        for key in [k for k, (_, expires) in self.counters.items() if expires <= now]:
            del self.counters[key]
        stale = [k for k, (t, window) in self.events.items() if not t or t[-1] <= now - window]
        for key in stale:
            del self.events[key]

    def _counter(self, key: str, now: float) -> list[float] | None:
        if now >= self.next_sweep:
            self._sweep(now)
        entry = self.counters.get(key)
        if entry is not None and entry[1] <= now:
            del self.counters[key]
            return None
        return entry

    def _window(self, key: str, expiry: float, now: float) -> deque[float]:
        if now >= self.next_sweep:
            self._sweep(now)
        slot = self.events.get(key)
        if slot is None:
            times: deque[float] = deque()
            self.events[key] = (times, expiry)
            return times
        times = slot[0]
        cutoff = now - expiry
        while times and times[0] <= cutoff:
            times.popleft()
        return times

    # -- counters (fixed window, sliding window counter) ------------------------

    async def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        return self._incr(key, expiry, amount, time.time())

    def incr_now(self, key: str, expiry: float, amount: int, now: float) -> int:
        """`incr` without a coroutine, for the limiter's synchronous path."""
        return self._incr(key, expiry, amount, now)

    def incr_pair_now(
        self, first: str, first_expiry: float, second: str, second_expiry: float, now: float
    ) -> tuple[int, int]:
        """`incr_now` of one unit on two keys (a consumer's daily and monthly usage)."""
        return self._incr(first, first_expiry, 1, now), self._incr(second, second_expiry, 1, now)

    def _incr(self, key: str, expiry: float, amount: int, now: float) -> int:
        # _counter() inlined: this runs for every counted request
        if now >= self.next_sweep:
            self._sweep(now)
        entry = self.counters.get(key)
        if entry is None or entry[1] <= now:  # none yet, or expired: a new one
            self.counters[key] = [amount, now + expiry]
            return amount
        entry[0] += amount
        return int(entry[0])

    async def decr(self, key: str, amount: int = 1) -> int:
        entry = self._counter(key, time.time())
        if entry is None:
            return 0
        entry[0] = max(entry[0] - amount, 0)
        return int(entry[0])

    async def get(self, key: str) -> int:
        entry = self._counter(key, time.time())
        return 0 if entry is None else int(entry[0])

    async def get_expiry(self, key: str) -> float:
        now = time.time()
        entry = self._counter(key, now)
        return now if entry is None else entry[1]

    async def clear(self, key: str) -> None:
        self.counters.pop(key, None)
        self.events.pop(key, None)

    async def check(self) -> bool:
        return True

    async def reset(self) -> int | None:
        count = len(self.counters) + len(self.events)
        self.counters.clear()
        self.events.clear()
        return count

    # -- moving window (exact) ------------------------------------------------

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        return self.acquire_entry_now(key, limit, expiry, amount, time.time())

    def acquire_entry_now(self, key: str, limit: int, expiry: int, amount: int, now: float) -> bool:
        if amount > limit:
            return False
        times = self._window(key, expiry, now)
        if len(times) + amount > limit:
            return False
        times.extend([now] * amount)
        return True

    def hit_moving_now(
        self, key: str, limit: int, expiry: int, now: float
    ) -> tuple[bool, float, int]:
        """`acquire_entry_now` of one unit, then `moving_window_now`, in one pass over the
        key: (admitted, window start, entries)."""
        times = self._window(key, expiry, now)
        admitted = len(times) < limit
        if admitted:
            times.append(now)
        if not times:
            return admitted, now, 0
        return admitted, times[0], len(times)

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        return self.moving_window_now(key, expiry, time.time())

    def moving_window_now(self, key: str, expiry: int, now: float) -> tuple[float, int]:
        times = self._window(key, expiry, now)
        if not times:
            return now, 0
        return times[0], len(times)

    # -- sliding window counter (approximate) -----------------------------------

    def _sliding_info(
        self, key: str, expiry: int, now: float
    ) -> tuple[str, int, float, int, float]:
        previous_key, current_key = self.sliding_window_keys(key, expiry, now)
        previous = self._counter(previous_key, now)
        current = self._counter(current_key, now)
        previous_count = 0 if previous is None else int(previous[0])
        current_count = 0 if current is None else int(current[0])
        previous_ttl = 0.0 if not previous_count else (1 - (((now - expiry) / expiry) % 1)) * expiry
        current_ttl = (1 - ((now / expiry) % 1)) * expiry + expiry
        return current_key, previous_count, previous_ttl, current_count, current_ttl

    async def acquire_sliding_window_entry(
        self, key: str, limit: int, expiry: int, amount: int = 1
    ) -> bool:
        return self.acquire_sliding_now(key, limit, expiry, amount, time.time())

    def acquire_sliding_now(
        self, key: str, limit: int, expiry: int, amount: int, now: float
    ) -> bool:
        if amount > limit:
            return False
        current_key, previous_count, previous_ttl, current_count, _ = self._sliding_info(
            key, expiry, now
        )
        if floor(previous_count * previous_ttl / expiry + current_count) + amount > limit:
            return False
        self._incr(current_key, 2 * expiry, amount, now)
        return True

    def hit_sliding_now(
        self, key: str, limit: int, expiry: int, now: float
    ) -> tuple[bool, int, float, int, float]:
        """`acquire_sliding_now` of one unit, then `sliding_window_now`, in one pass:
        (admitted, previous count, previous ttl, current count, current ttl)."""
        current_key, previous_count, previous_ttl, current_count, current_ttl = self._sliding_info(
            key, expiry, now
        )
        admitted = floor(previous_count * previous_ttl / expiry + current_count) + 1 <= limit
        if admitted:
            current_count = int(self._incr(current_key, 2 * expiry, 1, now))
        return admitted, previous_count, previous_ttl, current_count, current_ttl

    async def get_sliding_window(self, key: str, expiry: int) -> tuple[int, float, int, float]:
        return self._sliding_info(key, expiry, time.time())[1:]

    def sliding_window_now(
        self, key: str, expiry: int, now: float
    ) -> tuple[int, float, int, float]:
        return self._sliding_info(key, expiry, now)[1:]

    async def clear_sliding_window(self, key: str, expiry: int) -> None:
        previous_key, current_key = self.sliding_window_keys(key, expiry, time.time())
        await self.clear(previous_key)
        await self.clear(current_key)
