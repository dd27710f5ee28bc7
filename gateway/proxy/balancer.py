"""Targets of one API: round-robin over those in rotation, passive circuit breaking.

A target is in rotation when it is healthy (active checks) and its breaker admits
requests (gateway/proxy/breaker.py). Two rules keep clients from taking an API down:
the last target in rotation is never ejected, and when no target is in rotation at all
(every one unhealthy, say) requests go to all of them in turn, as Envoy does below its
panic threshold: a guess at a target beats a certain 503.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from gateway.config.models import CircuitBreakerConfig, ConnectionLimitsConfig, UpstreamConfig
from gateway.proxy.breaker import Breaker
from gateway.proxy.slots import ConnectionSlots
from gateway.proxy.transport import Transport


@dataclass(slots=True)
class Target:
    url: str  # base URL or asgi:module:attr
    transport: Transport
    breaker: Breaker = field(default_factory=lambda: Breaker(CircuitBreakerConfig()))
    slots: ConnectionSlots = field(
        default_factory=lambda: ConnectionSlots(ConnectionLimitsConfig())
    )
    healthy: bool = True  # decided by active health checks, when configured
    extra: dict = field(default_factory=dict)


class TargetPool:
    def __init__(self, targets: list[Target], config: UpstreamConfig, clock=time.monotonic) -> None:
        self.targets = targets
        self.config = config
        self._clock = clock
        self._next = 0
        for target in targets:
            target.breaker = Breaker(config.circuit_breaker)
            target.slots = ConnectionSlots(config.connection_limits)

    def pick(self, exclude: Target | None = None) -> Target:
        """Next target in rotation, round-robin, avoiding `exclude` when possible."""
        now = self._clock()
        targets = self.targets
        count = len(targets)
        fallback = None
        for _ in range(count):
            target = targets[self._next % count]
            self._next += 1
            if target.healthy and target.breaker.admits(now):
                if target is not exclude:
                    target.breaker.picked()
                    return target
                fallback = target
        if fallback is None:  # none in rotation: the panic rule, every target in turn
            fallback = targets[self._next % count]
            self._next += 1
            if fallback is exclude and count > 1:
                fallback = targets[self._next % count]
                self._next += 1
        fallback.breaker.picked()
        return fallback

    def succeeded(self, target: Target) -> None:
        breaker = target.breaker
        if breaker.failures or breaker.open_until:
            breaker.succeeded()

    def failed(self, target: Target) -> None:
        """A failure the upstream caused; the target opens unless it is the last one left."""
        others = any(t is not target and t.healthy and t.breaker.closed for t in self.targets)
        target.breaker.failed(self._clock(), may_open=others)

    def abandoned(self, target: Target) -> None:
        """The request sent to `target` ended without telling how the target is."""
        target.breaker.abandoned()

    def state(self) -> list[dict[str, object]]:
        now = self._clock()
        return [
            {
                "target": t.url,
                "healthy": t.healthy,
                "breaker": t.breaker.state(now),
                "ejected_for": round(t.breaker.ejected_for(now), 1),
            }
            for t in self.targets
        ]
