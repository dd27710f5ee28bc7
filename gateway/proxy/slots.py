"""A cap on requests in flight to one target, with a bounded queue in front of it.

Each request in flight holds one upstream connection (for http:// targets) until its
response body has been passed on, so this caps connections per target. Requests over
the cap wait in order, at most `max_pending` of them and at most the connect timeout
each; beyond that the client gets 503 with Retry-After (an UpstreamSaturated error),
which is the gateway's own limit and never counts against the target's breaker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib

from gateway.config.models import ConnectionLimitsConfig
from gateway.proxy.errors import UpstreamSaturated


class ConnectionSlots:
    __slots__ = ("_waiters", "active", "limit", "max_pending", "retry_after")

    def __init__(self, config: ConnectionLimitsConfig) -> None:
        self.limit = config.max_connections
        self.max_pending = config.max_pending
        self.retry_after = config.retry_after
        self.active = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    def try_acquire(self) -> bool:
        """Take a free slot without waiting (no coroutine on the common path)."""
        if self.active < self.limit and not self._waiters:
            self.active += 1
            return True
        return False

    async def acquire(self, wait: float) -> None:
        """Take a slot, waiting up to `wait` seconds; raise UpstreamSaturated if none comes."""
        if self.try_acquire():
            return
        if len(self._waiters) >= self.max_pending:
            raise UpstreamSaturated(self.retry_after)
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        timer = loop.call_later(wait, self._expire, waiter)
        try:
            await waiter  # release() hands its slot over: `active` already counts it
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self.release()  # handed over just as the request was cancelled: pass it on
            raise
        finally:
            timer.cancel()
            if not waiter.done() or waiter.cancelled():
                self._discard(waiter)

    def release(self) -> None:
        waiters = self._waiters
        while waiters:
            waiter = waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.active -= 1

    def _expire(self, waiter: asyncio.Future[None]) -> None:
        if not waiter.done():
            waiter.set_exception(UpstreamSaturated(self.retry_after))
            self._discard(waiter)

    def _discard(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):  # already handed a slot or expired
            self._waiters.remove(waiter)
