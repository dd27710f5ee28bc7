"""`gateway.services["revocations"]`: revoked token ids, in memory, refreshed from the
registry every `refresh_interval` seconds so a revocation reaches every node within 5 s."""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.registry import Registry

log = logging.getLogger("tiergate.oauth")
CLOCK_SKEW = 10.0  # re-read this far back: nodes' clocks and commit order differ
PURGE_EVERY = 600.0


class RevocationCache:
    def __init__(self, registry: Registry, interval: float) -> None:
        self.registry = registry
        self.interval = interval
        self._revoked: dict[str, float] = {}  # jti → exp
        self._since = 0.0
        self._purged = time.time()

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def add(self, jti: str, exp: float) -> None:
        """Take effect on this node at once (the registry carries it to the others)."""
        self._revoked[jti] = exp

    async def refresh(self) -> None:
        started = time.time()
        for jti, exp in await self.registry.revoked_since(self._since - CLOCK_SKEW):
            self._revoked[jti] = exp
        self._since = started
        expired = [jti for jti, exp in self._revoked.items() if exp <= started]
        for jti in expired:
            del self._revoked[jti]
        if started - self._purged > PURGE_EVERY:
            self._purged = started
            await self.registry.purge_revoked_tokens(started)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("revocation refresh failed, keeping the last list: %s", exc)
