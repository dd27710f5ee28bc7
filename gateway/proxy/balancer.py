"""Targets of one API: smooth weighted round-robin over those in rotation, passive
circuit breaking.

The rotation is nginx's smooth weighted round-robin: each pick adds every eligible
target's weight to its running score, takes the highest score and subtracts the total
weight from it. Weights 5:1:1 give a a b a c a a (never five a's in a row), and equal
weights give plain round-robin. A target out of rotation neither gains nor loses score.

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
from gateway.config.targets import DEFAULT_SET
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
    weight: int = 1
    score: int = 0  # the smooth weighted round-robin's running score


class TargetPool:
    def __init__(
        self,
        targets: list[Target],
        config: UpstreamConfig,
        clock=time.monotonic,
        name: str = DEFAULT_SET,
    ) -> None:
        self.targets = targets
        self.config = config
        self.name = name  # the target set: "default", or a name under `target_sets`
        self._clock = clock
        for target in targets:
            target.breaker = Breaker(config.circuit_breaker)
            target.slots = ConnectionSlots(config.connection_limits)

    def pick(self, exclude: Target | None = None) -> Target:
        """Next target in rotation, avoiding `exclude` (a retry) when another is in rotation."""
        if len(self.targets) == 1:  # the common case: nothing to choose
            only = self.targets[0]
            only.breaker.picked()
            return only
        now = self._clock()
        chosen = _smooth_pick([t for t in self.targets if t.healthy and t.breaker.admits(now)])
        if chosen is exclude and chosen is not None:
            others = [
                t for t in self.targets if t is not exclude and t.healthy and t.breaker.admits(now)
            ]
            chosen = _smooth_pick(others) or chosen
        if chosen is None:  # none in rotation: the panic rule, every target by weight
            everyone = self.targets
            if exclude is not None and len(everyone) > 1:
                everyone = [t for t in everyone if t is not exclude]
            chosen = _smooth_pick(everyone)
        assert chosen is not None  # a pool has at least one target
        chosen.breaker.picked()
        return chosen

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
                "target_set": self.name,
                "weight": t.weight,
                "healthy": t.healthy,
                "breaker": t.breaker.state(now),
                "ejected_for": round(t.breaker.ejected_for(now), 1),
            }
            for t in self.targets
        ]


def _smooth_pick(targets: list[Target]) -> Target | None:
    """One step of nginx's smooth weighted round-robin over `targets`."""
    best = None
    total = 0
    for target in targets:
        target.score += target.weight
        total += target.weight
        if best is None or target.score > best.score:
            best = target
    if best is not None:
        best.score -= total
    return best
