"""Named admin tokens, read-only or read-write, checked once for the whole admin listener.

`admin_tokens:` names tokens by the SHA-256 of their value or by the environment variable
that holds it, so the config file holds no secret. The single `admin_token`
(TIERGATE_ADMIN_TOKEN) is still accepted, as the read-write token named `admin`.
A presented token is hashed and compared in constant time with every configured one;
tokens never reach a log line. A read-only token may use GET and HEAD only.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gateway.config.admin import Access, AdminTokenConfig
from gateway.problem import ProblemResponse
from gateway.types import ASGIApp, Receive, Scope, Send

if TYPE_CHECKING:
    from gateway.config.models import GatewayConfig

log = logging.getLogger("tiergate.admin")

LEGACY_NAME = "admin"
# The scope key where the admin listener puts the caller it authenticated.
ADMIN_IDENTITY = "tiergate.admin"
READ_ONLY = "The admin token '{name}' is read-only; it may only use GET and HEAD."
ENV_MISSING = "admin token %r is disabled: the environment variable %s is not set"
READ_METHODS = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class AdminIdentity:
    name: str
    access: Access

    @property
    def can_write(self) -> bool:
        return self.access == "read-write"


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class AdminTokens:
    """Every accepted admin token, by digest."""

    def __init__(self, tokens: list[tuple[bytes, AdminIdentity]]) -> None:
        self._tokens = tokens

    @classmethod
    def from_config(
        cls, config: GatewayConfig, env: Mapping[str, str] | None = None
    ) -> AdminTokens:
        env = os.environ if env is None else env
        tokens: list[tuple[bytes, AdminIdentity]] = []
        if config.admin_token:
            tokens.append((_digest(config.admin_token), AdminIdentity(LEGACY_NAME, "read-write")))
        for name, entry in sorted(config.admin_tokens.items()):
            if entry.token_sha256 is not None:
                digest = bytes.fromhex(entry.token_sha256)
            elif value := env.get(entry.token_env or ""):
                digest = _digest(value)
            else:
                log.warning(ENV_MISSING, name, entry.token_env)
                continue
            tokens.append((digest, AdminIdentity(name, entry.access)))
        return cls(tokens)

    @property
    def configured(self) -> bool:
        return bool(self._tokens)

    def identify(self, presented: str) -> AdminIdentity | None:
        """The token's identity; every configured token is compared, match or not."""
        digest = _digest(presented)
        found = None
        for expected, identity in self._tokens:
            if hmac.compare_digest(digest, expected) and found is None:
                found = identity
        return found


class AdminAuthentication:
    """ASGI middleware of the admin listener: who is calling, and may they write.

    A valid bearer token puts its AdminIdentity in the scope (`require_admin` lets it
    through; the audit trail names it); a read-only token gets 403 for any method other
    than GET and HEAD. Requests without a valid token go on unmarked: each endpoint's
    `require_admin` answers 401 or 503, and /metrics stays open as before.
    """

    def __init__(self, app: ASGIApp, tokens: AdminTokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[ADMIN_IDENTITY] = None
            identity = self._identity(scope)
            if identity is not None:
                if not identity.can_write and scope["method"] not in READ_METHODS:
                    refused = ProblemResponse(403, READ_ONLY.format(name=identity.name))
                    await refused(scope, receive, send)
                    return
                scope[ADMIN_IDENTITY] = identity
            scope["tiergate.admin_configured"] = self.tokens.configured
        await self.app(scope, receive, send)

    def _identity(self, scope: Scope) -> AdminIdentity | None:
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    return self.tokens.identify(token.strip())
                return None
        return None


__all__ = [
    "ADMIN_IDENTITY",
    "AdminAuthentication",
    "AdminIdentity",
    "AdminTokenConfig",
    "AdminTokens",
]
