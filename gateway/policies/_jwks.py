"""Signing keys of an external issuer: OIDC discovery → JWKS, cached and refetched sparingly.

Keys come only from the configured URLs, never from token content (`jku`, `x5u`,
`jwk` are ignored). One fetch runs at a time. An unknown `kid` triggers a fetch at once,
unless another unknown kid already did within the cooldown: a key the IdP just rotated in
is accepted at once even right after a routine fetch, and a storm of random kids costs
the IdP at most one fetch per cooldown. A failed fetch keeps the last good keys.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from gateway.services import JwksTable

logger = logging.getLogger("tiergate.jwks")

MAX_DOCUMENT_BYTES = 512 * 1024
LOOPBACK = ("127.0.0.1", "localhost", "::1")
FETCH_TIMEOUT = 5.0

# Which key classes may verify which algorithm (HMAC never: keys here are public).
_RSA = (rsa.RSAPublicKey,)
_EDDSA = (ed25519.Ed25519PublicKey, ed448.Ed448PublicKey)
KEY_TYPES: dict[str, tuple[type, ...]] = {
    **{f"RS{n}": _RSA for n in (256, 384, 512)},
    **{f"PS{n}": _RSA for n in (256, 384, 512)},
    **{f"ES{n}": (ec.EllipticCurvePublicKey,) for n in (256, 384, 512)},
    "ES256K": (ec.EllipticCurvePublicKey,),
    "EdDSA": _EDDSA,
}
CURVES = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1", "ES256K": "secp256k1"}
ASYMMETRIC_ALGORITHMS = frozenset(KEY_TYPES)


def secure_url(url: str) -> bool:
    """https, or plain http on loopback only (a local IdP in development and tests)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return True
    return parts.scheme == "http" and parts.hostname in LOOPBACK


class KeysUnavailable(Exception):
    """No keys were ever fetched for this issuer (the IdP has been unreachable)."""


@dataclass(frozen=True, slots=True)
class VerificationKey:
    key: Any  # a cryptography public key object
    alg: str | None  # the JWK's own `alg`, when it declares one


def key_fits(key: VerificationKey, alg: str) -> bool:
    """True when `key` may verify a signature made with `alg` (no algorithm confusion)."""
    if key.alg is not None and key.alg != alg:
        return False
    types = KEY_TYPES.get(alg)
    if types is None or not isinstance(key.key, types):
        return False
    curve = CURVES.get(alg)
    if curve is None:
        return True
    return isinstance(key.key, ec.EllipticCurvePublicKey) and key.key.curve.name == curve


def parse_jwks(document: Mapping[str, Any]) -> dict[str | None, VerificationKey]:
    """Public signing keys by kid; unusable, symmetric and encryption keys are skipped."""
    keys: dict[str | None, VerificationKey] = {}
    for entry in document.get("keys") or []:
        if not isinstance(entry, dict) or entry.get("kty") not in ("RSA", "EC", "OKP"):
            continue
        if entry.get("use", "sig") != "sig" or "d" in entry:  # never accept a private key
            continue
        alg = entry.get("alg")
        if alg is not None and alg not in ASYMMETRIC_ALGORITHMS:
            continue
        try:
            parsed = jwt.PyJWK(entry, algorithm=alg)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            continue
        keys[entry.get("kid")] = VerificationKey(parsed.key, alg)
    return keys


@dataclass(slots=True)
class JwksKeys:
    """The key set of one issuer, shared by every API that trusts that issuer."""

    jwks_uri: str | None
    discovery_url: str | None
    issuer: str
    refresh_interval: float
    cooldown: float
    keys: dict[str | None, VerificationKey] = field(default_factory=dict)
    fetched_at: float = -1.0  # monotonic time of the last successful fetch
    attempted_at: float = float("-inf")  # monotonic time of the last attempt
    unknown_kid_at: float = float("-inf")  # ... of the last fetch an unknown kid caused
    fetches: int = 0
    _task: asyncio.Task[None] | None = None

    async def key_for(self, kid: str | None) -> VerificationKey | None:
        """The key for `kid`, refetching at most once per cooldown when it is unknown."""
        now = time.monotonic()
        if not self.keys:
            await self._refresh_once(now)
            if not self.keys:
                raise KeysUnavailable(self.issuer)
        elif now - self.fetched_at > self.refresh_interval:
            self._start_refresh(now)  # stale: refresh in the background, answer now
        key = self._lookup(kid)
        if key is None and self._task is not None:  # a fetch is under way: it may bring it
            await asyncio.shield(self._task)
            key = self._lookup(kid)
        # A fetch that started with this request (the first, or a stale refresh) is as fresh
        # as another would be. Routine fetches do not count against the cooldown: they would
        # hide a rotated-in key for that long.
        fetched_now = self.attempted_at >= now
        if key is None and not fetched_now and now - self.unknown_kid_at >= self.cooldown:
            self.unknown_kid_at = now
            await self._refresh_once(now, force=True)
            key = self._lookup(kid)
        return key

    def _lookup(self, kid: str | None) -> VerificationKey | None:
        if kid is None and len(self.keys) == 1:
            return next(iter(self.keys.values()))
        return self.keys.get(kid)

    def _start_refresh(self, now: float, force: bool = False) -> asyncio.Task[None] | None:
        if self._task is None and (force or now - self.attempted_at >= self.cooldown):
            self.attempted_at = now
            self._task = asyncio.ensure_future(self._refresh())
        return self._task

    async def _refresh_once(self, now: float, force: bool = False) -> None:
        task = self._start_refresh(now, force)
        if task is not None:
            await asyncio.shield(task)

    async def _refresh(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=FETCH_TIMEOUT, follow_redirects=False) as client:
                if self.jwks_uri is None:
                    assert self.discovery_url is not None
                    self.jwks_uri = await self._discover(client, self.discovery_url)
                self.fetches += 1
                keys = parse_jwks(await _get_json(client, self.jwks_uri))
            if not keys:
                raise ValueError("the JWKS holds no usable signing key")
            self.keys = keys
            self.fetched_at = time.monotonic()
        except Exception as error:  # the IdP is down or broken: keep the last good keys
            logger.warning("JWKS fetch for issuer %s failed: %s", self.issuer, error)
        finally:
            self._task = None

    async def _discover(self, client: httpx.AsyncClient, url: str) -> str:
        document = await _get_json(client, url)
        if document.get("issuer") != self.issuer:
            raise ValueError(
                f"discovery document names issuer {document.get('issuer')!r}, "
                f"expected {self.issuer!r}"
            )
        jwks_uri = document.get("jwks_uri")
        if not isinstance(jwks_uri, str) or not secure_url(jwks_uri):
            raise ValueError("discovery document has no https jwks_uri")
        return jwks_uri


async def _get_json(client: httpx.AsyncClient, url: str) -> dict[str, Any]:
    async with client.stream("GET", url, headers={"accept": "application/json"}) as response:
        response.raise_for_status()
        body = b""
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_DOCUMENT_BYTES:
                raise ValueError(f"{url} answered more than {MAX_DOCUMENT_BYTES} bytes")
    document = json.loads(body)
    if not isinstance(document, dict):
        raise ValueError(f"{url} did not answer a JSON object")
    return document


def shared_keys(table: JwksTable, make: JwksKeys) -> JwksKeys:
    """One JwksKeys per (issuer, URL) for the whole gateway, kept in Services.jwks."""
    return table.setdefault((make.issuer, make.jwks_uri, make.discovery_url), make)
