"""Immutable records the registry hands out. None of them carries a secret."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ConsumerRecord:
    id: str
    plan: str | None
    description: str
    created_at: float

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "plan": self.plan,
            "description": self.description,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class ApplicationRecord:
    id: str
    consumer_id: str
    name: str
    created_at: float

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "consumer": self.consumer_id,
            "name": self.name,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class ClientRecord:
    client_id: str
    name: str
    consumer_id: str
    scopes: frozenset[str]
    kind: str  # client | service
    api: str | None
    tier: str | None
    plan: str | None
    grant_types: frozenset[str]
    application_id: str | None
    created_at: float
    revoked_at: float | None
    tokens_issued: int = 0
    last_token_at: float | None = None
    secret_hash: str = field(default="", repr=False, compare=False)
    previous_secret_hash: str | None = field(default=None, repr=False, compare=False)
    previous_secret_until: float | None = None
    client_type: str = "confidential"  # or "public": no secret, PKCE and redirect URIs
    redirect_uris: tuple[str, ...] = ()

    @property
    def public_client(self) -> bool:
        return self.client_type == "public"

    def public(self) -> dict[str, Any]:
        return {
            "client_id": self.client_id,
            "name": self.name,
            "consumer": self.consumer_id,
            "application": self.application_id,
            "scopes": sorted(self.scopes),
            "kind": self.kind,
            "api": self.api,
            "tier": self.tier,
            "plan": self.plan,
            "grant_types": sorted(self.grant_types),
            "client_type": self.client_type,
            "redirect_uris": list(self.redirect_uris),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    id: str
    prefix: str
    consumer_id: str
    plan: str
    apis: frozenset[str]
    created_at: float
    expires_at: float | None
    revoked_at: float | None
    replaced_by: str | None = None
    last_used_at: float | None = None
    scopes: frozenset[str] = frozenset()  # granted scopes, checked like a token's
    operations: frozenset[str] | None = None  # operations it may call; None: all

    def usable(self, now: float) -> bool:
        """Neither revoked nor expired at `now`."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return False
        return self.expires_at is None or now < self.expires_at

    def state(self, now: float) -> str:
        if self.revoked_at is not None and self.revoked_at <= now:
            return "revoked"
        if self.expires_at is not None and now >= self.expires_at:
            return "expired"
        return "active"

    def public(self, now: float) -> dict[str, Any]:
        return {
            "id": self.id,
            "prefix": self.prefix,
            "consumer": self.consumer_id,
            "plan": self.plan,
            "apis": sorted(self.apis),
            "scopes": sorted(self.scopes),
            "operations": None if self.operations is None else sorted(self.operations),
            "created_at": self.created_at,
            "expires_at": self.expires_at,
            "revoked_at": self.revoked_at,
            "replaced_by": self.replaced_by,
            "last_used_at": self.last_used_at,
            "state": self.state(now),
        }


@dataclass(frozen=True, slots=True)
class SigningKeyRecord:
    kid: str
    alg: str
    private_pem: str = field(repr=False)
    public_jwk: dict[str, Any] = field(compare=False)
    created_at: float = 0.0
    activates_at: float = 0.0
    retire_after: float | None = None


@dataclass(frozen=True, slots=True)
class UserRecord:
    """An end user who signs in at /oauth/authorize; never carries the password hash."""

    username: str
    customer_id: str
    created_at: float
    disabled_at: float | None = None
    failed_attempts: int = 0
    locked_until: float | None = None
    last_sign_in_at: float | None = None

    @property
    def disabled(self) -> bool:
        return self.disabled_at is not None

    def public(self) -> dict[str, Any]:
        return {
            "username": self.username,
            "customer_id": self.customer_id,
            "created_at": self.created_at,
            "disabled_at": self.disabled_at,
            "failed_attempts": self.failed_attempts,
            "locked_until": self.locked_until,
            "last_sign_in_at": self.last_sign_in_at,
        }


@dataclass(frozen=True, slots=True)
class AuthorizationCodeRecord:
    """A redeemed authorization code (what it was issued for)."""

    code_hash: str
    client_id: str
    username: str
    redirect_uri: str
    scope: str
    code_challenge: str
    code_challenge_method: str
    expires_at: float


@dataclass(frozen=True, slots=True)
class RefreshFamilyRecord:
    """One sign-in's chain of rotated refresh tokens."""

    id: str
    client_id: str
    username: str
    scope: str
    expires_at: float
