"""Approximate mode (`rate_limiting.sync`): count locally, push increments to Redis in
batches.

Every rule is counted as a sliding window counter over calendar buckets of its window
(the arithmetic of `limits`' sliding window counter: the previous bucket weighted by the
part of it still inside the window, plus the current bucket). A process decides
alone, without awaiting anything, from what Redis said at the last sync plus what it
has admitted since; every `sync` seconds one pipelined round trip adds its new hits to
Redis (INCRBY, EXPIRE) and reads back the totals of every process.

Over-admission: a process cannot see what the others admitted since their last push,
so with P processes a limit L admits at most L + (P - 1) * A, A being what one process
admits for that key in one sync interval plus one round trip (A <= L; at r requests/s
per process, A ~ r * sync). The first time a process meets a key in a window it reads
the key's total from Redis before deciding (one round trip per key, window and process).
When Redis is unreachable the counts stay local (each process applies the limits alone)
and are pushed when it is back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from math import ceil, floor
from typing import Any

from gateway.limits.redis_errors import redis_error
from gateway.limits.redis_script import LIMITS_KEY_PREFIX

log = logging.getLogger("tiergate.limits")

SYNC_FAILED = "rate-limit sync to Redis failed (%s); counting locally until it is back"
SYNC_BACK = "rate-limit sync to Redis works again"
REDIS_KEY = LIMITS_KEY_PREFIX + ":approx/{key}/{bucket}"  # key: limits' key_for


class Counter:
    __slots__ = ("key", "pending", "remote", "ttl", "until")

    def __init__(self, key: str, ttl: int, until: float) -> None:
        self.key = key
        self.ttl = ttl
        self.until = until  # no window reaches the counter after this: it may be dropped
        self.remote = 0  # the total in Redis at the last sync (every process)
        self.pending = 0  # admitted here since the last push

    @property
    def count(self) -> int:
        return self.remote + self.pending


class BatchedCounters:
    """The local counts of one process and the task that syncs them."""

    def __init__(self, client: Any, prefix: str, interval: float, timeout: float) -> None:
        self.client = client
        self.prefix = prefix
        self.interval = interval
        self.timeout = timeout
        self.counters: dict[str, Counter] = {}
        self.clock = time.time
        self.failing = False
        self.syncs = 0
        self._task: asyncio.Task[None] | None = None

    # -- counting (no await: atomic on the event loop) --------------------------

    def counter(self, name: str, ttl: int, until: float) -> Counter:
        found = self.counters.get(name)
        if found is None:
            found = self.counters[name] = Counter(name, ttl, until)
        return found

    def names(self, key: str, expiry: int, now: float) -> tuple[str, str, int]:
        """(current bucket's Redis key, previous bucket's, current bucket)."""
        bucket = int(now // expiry)
        current = REDIS_KEY.format(key=key, bucket=bucket)
        return current, REDIS_KEY.format(key=key, bucket=bucket - 1), bucket

    def missing(
        self, rules: Sequence[Any], subject: str, usage: Sequence[tuple[str, int, Any]]
    ) -> list[tuple[str, int, float]]:
        """(name, ttl, until) of the counters this request needs that are not known yet."""
        now = self.clock()
        found = []
        for rule in rules:
            expiry = rule.item.get_expiry()
            current, previous, bucket = self.names(
                rule.item.key_for(self.prefix, rule.scope, subject), expiry, now
            )
            if current not in self.counters:
                found.append((current, 2 * expiry, (bucket + 2) * expiry))
                found.append((previous, 2 * expiry, (bucket + 1) * expiry))
        for key, ends_in, _ in usage:
            name = f"{LIMITS_KEY_PREFIX}:{key}"
            if name not in self.counters:
                found.append((name, ends_in + 86400, now + ends_in + 86400))
        return found

    async def prime(self, missing: Sequence[tuple[str, int, float]]) -> None:
        """Read the totals of counters met for the first time (one MGET)."""
        try:
            async with asyncio.timeout(self.timeout):
                values = await self.client.mget([name for name, _, _ in missing])
        except (redis_error(), OSError, TimeoutError) as exc:
            if not self.failing:
                log.warning(SYNC_FAILED, exc)
            self.failing = True
            values = [None] * len(missing)
        for (name, ttl, until), value in zip(missing, values, strict=True):
            if name not in self.counters:  # another request may have primed it meanwhile
                counter = self.counters[name] = Counter(name, ttl, until)
                counter.remote = int(value or 0)

    def window(self, key: str, limit: int, expiry: int) -> tuple[Counter, int, int]:
        """(current bucket's counter, weighted count, seconds until one more is free)."""
        now = self.clock()
        name, previous_name, bucket = self.names(key, expiry, now)
        current = self.counter(name, 2 * expiry, (bucket + 2) * expiry)
        previous = self.counters.get(previous_name)
        previous_count = previous.count if previous is not None else 0
        weight = 1 - (now - bucket * expiry) / expiry
        weighted = floor(previous_count * weight + current.count)
        reset = ceil((bucket + 1) * expiry - now)
        return current, weighted, max(0, reset)

    def usage(self, key: str, ends_in: int) -> Counter:
        """A usage counter: the same Redis key as exact mode's (`tiergate usage` reads it)."""
        ttl = ends_in + 86400
        return self.counter(f"{LIMITS_KEY_PREFIX}:{key}", ttl, self.clock() + ttl)

    # -- syncing ---------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.sync()

    async def sync(self) -> None:
        """Push every counter's pending hits and read back every total: one round trip."""
        now = self.clock()
        counters = list(self.counters.values())
        if not counters:
            return
        pushed = [c.pending for c in counters]
        pipe = self.client.pipeline(transaction=False)
        for counter, amount in zip(counters, pushed, strict=True):
            if amount:
                pipe.incrby(counter.key, amount)
                pipe.expire(counter.key, counter.ttl)
            else:  # a read: INCRBY 0 would leave a key without expiry behind
                pipe.get(counter.key)
        try:
            async with asyncio.timeout(self.timeout):
                replies = await pipe.execute()
        except (redis_error(), OSError, TimeoutError) as exc:
            if not self.failing:
                log.warning(SYNC_FAILED, exc)
            self.failing = True
            return
        if self.failing:
            log.warning(SYNC_BACK)
            self.failing = False
        self.syncs += 1
        index = 0
        for counter, amount in zip(counters, pushed, strict=True):
            counter.pending -= amount  # what was admitted during the round trip stays
            counter.remote = int(replies[index] or 0)
            index += 2 if amount else 1
        self._forget(now)

    def _forget(self, now: float) -> None:
        """Drop counters of buckets no window reaches any more (and nothing to push)."""
        stale = [name for name, c in self.counters.items() if not c.pending and c.until < now]
        for name in stale:
            del self.counters[name]

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if any(c.pending for c in self.counters.values()):
            await self.sync()  # what this process admitted still counts for the others


def hit(
    counters: BatchedCounters, rules: Sequence[Any], subject: str
) -> tuple[int, list[tuple[int, int]]]:
    """Hit every rule until one refuses: (rules passed, (remaining, reset) per rule)."""
    passed = len(rules)
    states = []
    for index, rule in enumerate(rules):
        item = rule.item
        key = item.key_for(counters.prefix, rule.scope, subject)
        current, weighted, reset = counters.window(key, item.amount, item.get_expiry())
        if passed == len(rules):
            if weighted + 1 > item.amount:
                passed = index
            else:
                current.pending += 1
                weighted += 1
        states.append((max(0, item.amount - weighted), reset))
    return passed, states


def count_usage(
    counters: BatchedCounters,
    keys: Sequence[tuple[str, int, int | None]],
) -> tuple[list[int], int | None]:
    """Count one request on each (usage key, seconds to period end, quota or None):
    (counts, index of the quota that refuses it or None); a refused request is not counted."""
    usage = [counters.usage(key, ends_in) for key, ends_in, _ in keys]
    refused = None
    for index, (counter, (_, _, quota)) in enumerate(zip(usage, keys, strict=True)):
        if quota is not None and counter.count + 1 > quota:
            refused = index
    if refused is None:
        for counter in usage:
            counter.pending += 1
    return [c.count for c in usage], refused
