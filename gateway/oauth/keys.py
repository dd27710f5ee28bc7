"""Signing keys: creation, JWK form, rotation, and the in-memory key ring every node uses.

The registry holds the keys, so every node signs and verifies alike. A rotated-in key
is published first and signs only after `key_activation_delay`; the keys it replaces
stay published until the last token they signed has expired.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import time
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from gateway.config.models import OAuthConfig
from gateway.registry import Registry, SigningKeyRecord

log = logging.getLogger("tiergate.oauth")
RETIRE_LEEWAY = 60.0  # seconds of clock skew tolerated after the last token expires
_THUMBPRINT_MEMBERS = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}


def new_signing_key(alg: str, activates_at: float | None = None) -> SigningKeyRecord:
    if alg == "RS256":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    elif alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
        jwk = json.loads(ECAlgorithm.to_jwk(private.public_key()))
    else:
        raise ValueError(f"unsupported signing algorithm {alg!r}; use RS256 or ES256")
    kid = thumbprint(jwk)
    jwk.update({"kid": kid, "alg": alg, "use": "sig"})
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    now = time.time()
    return SigningKeyRecord(
        kid=kid,
        alg=alg,
        private_pem=pem,
        public_jwk=jwk,
        created_at=now,
        activates_at=now if activates_at is None else activates_at,
    )


def thumbprint(jwk: dict[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a stable kid."""
    members = {name: jwk[name] for name in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


async def rotate_signing_key(registry: Registry, oauth: OAuthConfig) -> SigningKeyRecord:
    """Add a new key; it signs after the activation delay, the old ones retire once the
    tokens they may still sign until then have expired."""
    now = time.time()
    key = new_signing_key(oauth.signing_alg, activates_at=now + oauth.key_activation_delay)
    retire = now + oauth.key_activation_delay + oauth.token_ttl + RETIRE_LEEWAY
    await registry.add_signing_key(key, retire_others_after=retire)
    return key


async def ensure_signing_key(registry: Registry, oauth: OAuthConfig) -> None:
    """At start-up: create the first key unless one is published (one node wins)."""
    if await registry.signing_keys():
        return
    await registry.add_signing_key(
        new_signing_key(oauth.signing_alg), retire_others_after=None, only_if_none=True
    )


class KeyRing:
    """`Services.issuer`: issuer/audience, the signing key and the public keys,
    kept in memory and refreshed from the registry every `refresh_interval` seconds."""

    def __init__(self, registry: Registry, oauth: OAuthConfig) -> None:
        self.registry = registry
        self.oauth = oauth
        self.issuer = oauth.issuer
        self.audience = oauth.audience
        self.token_ttl = oauth.token_ttl
        self._public: dict[str, Any] = {}
        self._algs: dict[str, str] = {}
        self._jwks: list[dict[str, Any]] = []
        self._records: list[SigningKeyRecord] = []
        self._private: dict[str, Any] = {}
        self.refreshed_at = 0.0

    async def refresh(self) -> None:
        records = await self.registry.signing_keys()
        public, algs, private = {}, {}, {}
        for record in records:
            if record.kid in self._public:  # parse each key once
                public[record.kid] = self._public[record.kid]
            else:
                public[record.kid] = _public_key(record.public_jwk)
            algs[record.kid] = record.alg
            if record.kid in self._private:
                private[record.kid] = self._private[record.kid]
        self._public, self._algs, self._private = public, algs, private
        self._jwks = [record.public_jwk for record in records]
        self._records = records
        self.refreshed_at = time.time()

    async def run(self) -> None:
        """Refresh forever; keep the last good keys when the registry is unreachable."""
        while True:
            await asyncio.sleep(self.oauth.refresh_interval)
            try:
                await self.refresh()
            except Exception as exc:
                log.warning("signing-key refresh failed, keeping the last keys: %s", exc)

    def public_keys(self) -> dict[str, Any]:
        """kid → public key object (cryptography), including keys in rotation overlap."""
        return self._public

    def algorithm(self, kid: str) -> str | None:
        return self._algs.get(kid)

    async def jwks(self) -> dict[str, Any]:
        return {"keys": list(self._jwks)}

    def signing_key(self) -> tuple[str, str, Any]:
        """(kid, alg, private key) of the newest active key."""
        now = time.time()
        active = [r for r in self._records if r.activates_at <= now] or self._records[-1:]
        if not active:
            raise RuntimeError("no signing key is available; the registry has none")
        record = active[0]
        key = self._private.get(record.kid)
        if key is None:
            key = serialization.load_pem_private_key(record.private_pem.encode(), password=None)
            self._private[record.kid] = key
        return record.kid, record.alg, key


def _public_key(jwk: dict[str, Any]) -> Any:
    if jwk["kty"] == "RSA":
        return RSAAlgorithm.from_jwk(jwk)
    return ECAlgorithm.from_jwk(jwk)
