"""Targets of one API: round-robin over the healthy ones, passive circuit breaking."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.config.models import UpstreamConfig
from gateway.proxy.errors import NoHealthyTarget
from gateway.proxy.transport import Transport


@dataclass(slots=True)
class Target:
    url: str  # base URL or asgi:module:attr
    transport: Transport
    failures: int = 0  # consecutive
    ejected_until: float = 0.0
    healthy: bool = True  # decided by active health checks, when configured
    extra: dict = field(default_factory=dict)

    def available(self, now: float) -> bool:
        return self.healthy and self.ejected_until <= now


class TargetPool:
    def __init__(self, targets: list[Target], config: UpstreamConfig, clock=time.monotonic) -> None:
        self.targets = targets
        self.config = config
        self._clock = clock
        self._next = 0

    def pick(self, exclude: Target | None = None) -> Target:
        """Next available target in round-robin order, avoiding `exclude` when possible."""
        now = self._clock()
        count = len(self.targets)
        fallback = None
        for _ in range(count):
            target = self.targets[self._next % count]
            self._next += 1
            if target.available(now):
                if target is not exclude:
                    return target
                fallback = target
        if fallback is not None:
            return fallback
        return self._none_available(now)

    def _none_available(self, now: float) -> Target:
        pending = [t.ejected_until - now for t in self.targets if t.ejected_until > now]
        if pending:
            raise NoHealthyTarget(min(pending))
        check = self.config.health_check
        raise NoHealthyTarget(check.interval if check else 1.0)

    def succeeded(self, target: Target) -> None:
        target.failures = 0

    def failed(self, target: Target) -> None:
        target.failures += 1
        if target.failures >= self.config.circuit_breaker.failures:
            target.ejected_until = self._clock() + self.config.circuit_breaker.cooldown
            target.failures = 0

    def state(self) -> list[dict[str, object]]:
        now = self._clock()
        return [
            {
                "target": t.url,
                "healthy": t.healthy,
                "ejected_for": round(max(0.0, t.ejected_until - now), 1),
            }
            for t in self.targets
        ]
