"""Per-hit CPU cost of the in-process `limits` storages, under concurrent load.

Prints µs of process CPU per hit (background sweeps and threads included) for
limits' own async MemoryStorage and Tiergate's lazily-expiring storage, for the
moving-window and sliding-window-counter strategies. Not a test: numbers only.

    .venv/bin/python bench/limits_memory.py
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time

from limits import parse
from limits.aio.strategies import MovingWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

import gateway.limits.memory  # noqa: F401  (registers async+tiergate-memory)

TASKS = 200  # concurrent requests in flight
SCENARIOS = {  # name: (hits, distinct keys, limit)
    "500 consumers at 1000/minute": (60_000, 500, parse("1000/minute")),
    "one hot consumer at 50000/minute": (50_000, 1, parse("50000/minute")),
}


async def run(scheme: str, strategy: type, hits: int, keys: int, item) -> tuple[float, int]:
    storage = storage_from_string(f"{scheme}://")
    limiter = strategy(storage)
    per_task = hits // TASKS
    threads_seen = 0

    async def worker(n: int) -> None:
        nonlocal threads_seen
        for i in range(per_task):
            await limiter.hit(item, "bench", str((n * per_task + i) % keys))
            if i % 64 == 0:
                threads_seen = max(threads_seen, threading.active_count())
                await asyncio.sleep(0)  # let other requests and sweeps run, as a server would

    start = time.process_time()
    await asyncio.gather(*(worker(n) for n in range(TASKS)))
    await asyncio.sleep(0.05)  # let pending sweeps finish: their cost counts too
    return (time.process_time() - start) / hits * 1e6, threads_seen


def main() -> None:
    print(f"{TASKS} concurrent tasks; python {sys.version.split()[0]}; CPU µs per hit (best of 3)")
    for title, (hits, keys, item) in SCENARIOS.items():
        print(f"-- {title} ({hits} hits)")
        for scheme in ("async+memory", "async+tiergate-memory"):
            for name, strategy in (
                ("moving-window", MovingWindowRateLimiter),
                ("sliding-window-counter", SlidingWindowCounterRateLimiter),
            ):
                micros, threads = min(
                    asyncio.run(run(scheme, strategy, hits, keys, item)) for _ in range(3)
                )
                print(f"{scheme:24} {name:24} {micros:7.2f} µs/hit  (max threads {threads})")


if __name__ == "__main__":
    main()
