"""Passive circuit breaking of one target: closed → open (ejected) → half-open (one trial).

Only failures the upstream caused count (refused or timed-out connections, invalid or
broken responses), never what a client's request made the upstream answer: otherwise any
client could send requests that end in 5xx and eject the API for everyone. Counting the
upstream's own 5xx is opt-in (`circuit_breaker.count_5xx`).

After the cooldown the target is half-open: the next request picked for it is the one
trial; the others keep going elsewhere until the trial says success (closed) or failure
(open for another cooldown). Whether a target may open at all is the pool's decision
(gateway/proxy/balancer.py): the last target in rotation never is.
"""

from __future__ import annotations

from gateway.config.models import CircuitBreakerConfig

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"


class Breaker:
    __slots__ = ("_cooldown", "_threshold", "failures", "open_until", "trial")

    def __init__(self, config: CircuitBreakerConfig) -> None:
        self._threshold = config.failures
        self._cooldown = config.cooldown
        self.failures = 0  # consecutive, while closed
        self.open_until = 0.0  # 0.0: closed; else open until then, half-open after
        self.trial = False  # the half-open trial request is in flight

    @property
    def closed(self) -> bool:
        return self.open_until == 0.0

    def admits(self, now: float) -> bool:
        """May a request be sent now: closed, or half-open with no trial in flight."""
        return self.open_until == 0.0 or (self.open_until <= now and not self.trial)

    def picked(self) -> None:
        """A request was sent: when not closed, it is the trial."""
        if self.open_until != 0.0:
            self.trial = True

    def succeeded(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.trial = False

    def failed(self, now: float, may_open: bool) -> None:
        """Count a failure the upstream caused; open when the threshold is reached."""
        if self.open_until != 0.0:  # the trial failed (or a request already in flight)
            self.open_until = now + self._cooldown
            self.trial = False
            return
        self.failures += 1
        if self.failures >= self._threshold and may_open:
            self.open_until = now + self._cooldown
            self.failures = 0

    def abandoned(self) -> None:
        """The request picked for this target ended with no verdict (client gone, cancelled)."""
        self.trial = False

    def state(self, now: float) -> str:
        if self.open_until == 0.0:
            return CLOSED
        return OPEN if self.open_until > now else HALF_OPEN

    def ejected_for(self, now: float) -> float:
        return max(0.0, self.open_until - now) if self.open_until else 0.0
