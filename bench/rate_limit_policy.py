"""CPU (and wall) µs per request of the rate-limit policy itself: decision, headers,
quotas, with memory:// and with Redis. Not a test: prints numbers only.

    .venv/bin/python bench/rate_limit_policy.py [redis://127.0.0.1:6379/0]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from gateway.context import Identity, RequestContext
from gateway.limits.engine import Limiter
from gateway.pipeline import BuildContext
from gateway.policies.rate_limit import RateLimitPolicy
from gateway.routing import RouteTable
from gateway.services import Services
from tests.support.configs import make_config

N = 20_000


def _config(storage: str, strategy: str):
    tmp = Path(tempfile.mkdtemp())
    plans = {
        "gold": {
            "limits": ["10000000/minute", "100000000/day"],
            "strategy": strategy,
            "quotas": {"daily": 100000000},
        },
    }
    api = {
        "name": "shop",
        "upstream": {"targets": ["http://127.0.0.1:9"]},
        "policies": {"rate-limit": {"anonymous": ["10000000/minute"], "strategy": strategy}},
    }
    prefix = "bench" + os.urandom(4).hex()
    return make_config(
        tmp, [api], plans=plans, limits_storage=storage, rate_limiting={"key_prefix": prefix}
    )


async def measure(storage: str, strategy: str, identity: Identity | None) -> tuple[float, float]:
    config = _config(storage, strategy)
    limiter = Limiter(config.limits_storage, config.rate_limiting)
    api = config.apis[0]
    policy = RateLimitPolicy(
        api.policy_configs["rate-limit"], BuildContext(config, api, Services(limiter=limiter))
    )
    route = RouteTable(config.apis).routes[0]
    ctx = RequestContext(
        scope={},
        route=route,
        method="GET",
        path="/experience/shop/v1/items",
        query=b"",
        headers=[],
        request_id="x",
        client_ip="10.0.0.1",
        started=0.0,
        identity=identity,
    )
    n = N if storage.startswith("memory") else N // 4
    for _ in range(200):  # warm up (connections, caches)
        await policy(ctx)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(n):
        ctx.response_headers = []
        assert await policy(ctx) is None
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await limiter.aclose()
    return cpu / n * 1e6, wall / n * 1e6


def main() -> None:
    storages = ["memory://", *sys.argv[1:]]
    gold = Identity(kind="partner", consumer_id="acme", plan="gold")
    print(f"rate-limit policy, sequential calls; python {sys.version.split()[0]}")
    for storage in storages:
        for strategy in ("moving-window", "sliding-window-counter"):
            for label, identity in (
                ("anonymous, 1 limit", None),
                ("plan: 2 limits + quotas", gold),
            ):
                cpu, wall = asyncio.run(measure(storage, strategy, identity))
                print(
                    f"{storage:28} {strategy:23} {label:24} {cpu:7.1f} µs CPU  {wall:7.1f} µs wall"
                )


if __name__ == "__main__":
    main()
