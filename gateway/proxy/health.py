"""Active health checks: probe each target and take it out or bring it back."""

from __future__ import annotations

import asyncio

from gateway.config.models import HealthCheckConfig
from gateway.proxy.balancer import Target, TargetPool
from gateway.proxy.errors import UpstreamError
from gateway.proxy.transport import UpstreamRequest


class HealthChecker:
    def __init__(self, pool: TargetPool, config: HealthCheckConfig) -> None:
        self.pool = pool
        self.config = config
        self._streak: dict[str, int] = {}  # >0 successes in a row, <0 failures in a row

    async def run(self) -> None:
        while True:
            await asyncio.gather(*(self.probe(t) for t in self.pool.targets))
            await asyncio.sleep(self.config.interval)

    async def probe(self, target: Target) -> bool:
        request = UpstreamRequest(
            "GET",
            target.url,
            self.config.path,
            [(b"user-agent", b"tiergate-health")],
            None,
            self.config.timeout,
            self.config.timeout,
        )
        try:
            response = await asyncio.wait_for(target.transport.send(request), self.config.timeout)
            ok = 200 <= response.status < 400
            await response.aclose()
        except (UpstreamError, TimeoutError):
            ok = False
        self._record(target, ok)
        return ok

    def _record(self, target: Target, ok: bool) -> None:
        streak = self._streak.get(target.url, 0)
        streak = max(streak, 0) + 1 if ok else min(streak, 0) - 1
        self._streak[target.url] = streak
        if ok and streak >= self.config.healthy_threshold:
            target.healthy = True
        elif not ok and -streak >= self.config.unhealthy_threshold:
            target.healthy = False
