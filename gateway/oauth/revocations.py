"""`Services.revocations`: revoked token ids, in memory, refreshed from the
registry every `refresh_interval` seconds so a revocation reaches every node within 5 s.

An id is kept until its token's `exp` plus KEPT_AFTER_EXP, not just until `exp`: the jwt
policy accepts a token until `exp + leeway`, and forgetting the id at `exp` would let a
revoked token work again for the length of the leeway. The registry stores that
"kept until" time in its `exp` column, so every node and the purge agree on it.
"""

from __future__ import annotations

import asyncio
import logging
import time

from gateway.registry import Registry

log = logging.getLogger("tiergate.oauth")
KEPT_AFTER_EXP = 300.0  # the largest jwt `leeway` IssuerConfig allows
CLOCK_SKEW = 10.0  # re-read this far back: nodes' clocks and commit order differ
PURGE_EVERY = 600.0
# Spent and expired authorization codes are deleted a day after they expire: until then
# a replayed code is still recognised and revokes what it started (RFC 6749 §4.1.2).
CODES_KEPT_AFTER_EXPIRY = 86400.0


class RevocationCache:
    def __init__(self, registry: Registry, interval: float) -> None:
        self.registry = registry
        self.interval = interval
        self._revoked: dict[str, float] = {}  # jti → kept until (exp + KEPT_AFTER_EXP)
        self._since = 0.0
        self._purged = time.time()

    def is_revoked(self, jti: str) -> bool:
        return jti in self._revoked

    def add(self, jti: str, kept_until: float) -> None:
        """Take effect on this node at once (the registry carries it to the others)."""
        self._revoked[jti] = kept_until

    async def revoke(self, jti: str, exp: float) -> None:
        """Record a revocation in the registry (shared by every node) and here."""
        kept_until = exp + KEPT_AFTER_EXP
        await self.registry.revoke_token(jti, kept_until)
        self.add(jti, kept_until)

    async def is_revoked_shared(self, jti: str) -> bool:
        """The registry's answer, for introspection: a revoke through another node counts
        before this node's next refresh. Never on the request path (one query)."""
        if jti in self._revoked:
            return True
        return await self.registry.is_token_revoked(jti)

    async def refresh(self) -> None:
        started = time.time()
        for jti, exp in await self.registry.revoked_since(self._since - CLOCK_SKEW):
            self._revoked[jti] = exp
        self._since = started
        expired = [jti for jti, until in self._revoked.items() if until <= started]
        for jti in expired:
            del self._revoked[jti]
        if started - self._purged > PURGE_EVERY:
            self._purged = started
            await self.registry.purge_revoked_tokens(started)
            await self.registry.purge_authorization_codes(started - CODES_KEPT_AFTER_EXPIRY)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("revocation refresh failed, keeping the last list: %s", exc)
