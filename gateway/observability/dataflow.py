"""Live traffic per edge between APIs (caller → callee), from the gateway's own counts.

An edge is known when the caller is a tier API's service identity; calls from
client apps and partners are counted on the edge `clients → <experience API>`.
Counts live in ten-second buckets so a rate over the window costs a few additions.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from gateway.context import RequestContext

BUCKET_SECONDS = 10
CLIENTS = "clients"


@dataclass(slots=True)
class _Edge:
    buckets: dict[int, list[int]] = field(default_factory=dict)  # bucket → [calls, errors]


class DataFlow:
    def __init__(self, window: int = 60, clock: Callable[[], float] = time.time) -> None:
        self.window = window
        self._clock = clock
        self._edges: dict[tuple[str, str], _Edge] = {}

    def record(self, ctx: RequestContext, status: int) -> None:
        identity = ctx.identity
        caller = identity.api if identity is not None and identity.api else CLIENTS
        edge = self._edges.get((caller, ctx.route.api.name))
        if edge is None:
            edge = self._edges[(caller, ctx.route.api.name)] = _Edge()
        bucket = int(self._clock()) // BUCKET_SECONDS
        counts = edge.buckets.get(bucket)
        if counts is None:
            counts = edge.buckets[bucket] = [0, 0]
            self._prune(edge, bucket)
        counts[0] += 1
        if status >= 500:
            counts[1] += 1

    def _prune(self, edge: _Edge, current: int) -> None:
        oldest = current - self.window // BUCKET_SECONDS
        for bucket in [b for b in edge.buckets if b < oldest]:
            del edge.buckets[bucket]

    def snapshot(self) -> list[dict[str, object]]:
        """Calls per minute and error rate per edge over the window."""
        now = int(self._clock()) // BUCKET_SECONDS
        oldest = now - self.window // BUCKET_SECONDS + 1
        out = []
        for (caller, callee), edge in sorted(self._edges.items()):
            calls = sum(c[0] for b, c in edge.buckets.items() if b >= oldest)
            errors = sum(c[1] for b, c in edge.buckets.items() if b >= oldest)
            out.append(
                {
                    "from": caller,
                    "to": callee,
                    "calls": calls,
                    "calls_per_min": round(calls * 60 / self.window, 2),
                    "error_rate": round(errors / calls, 4) if calls else 0.0,
                }
            )
        return out
