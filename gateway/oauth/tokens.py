"""RFC 9068 JWT access tokens: minting and (for introspection/revocation) verifying."""

from __future__ import annotations

import secrets
import time
from typing import Any

import jwt

from gateway.oauth.keys import KeyRing
from gateway.registry import ClientRecord

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105


def mint_access_token(
    ring: KeyRing, client: ClientRecord, scopes: list[str], plan: str | None
) -> tuple[str, dict[str, Any]]:
    """Sign an access token for `client`; returns (token, claims)."""
    kid, alg, key = ring.signing_key()
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ring.issuer,
        "sub": client.consumer_id,
        "aud": ring.audience,
        "exp": now + ring.token_ttl,
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        "tg_kind": client.kind,
    }
    if plan:
        claims["tg_plan"] = plan
    if client.kind == "service":
        claims["tg_api"] = client.api
        claims["tg_tier"] = client.tier
    token = jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": ACCESS_TOKEN_TYPE})
    return token, claims


def verify_access_token(
    ring: KeyRing, token: str, *, verify_exp: bool = True
) -> dict[str, Any] | None:
    """Claims of a token this server issued and that verifies; None otherwise."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    kid = header.get("kid")
    if not isinstance(kid, str):
        return None
    alg = ring.algorithm(kid)
    if alg is None or header.get("alg") != alg:
        return None
    try:
        return jwt.decode(
            token,
            ring.public_keys()[kid],
            algorithms=[alg],
            audience=ring.audience,
            issuer=ring.issuer,
            options={"require": ["exp", "iat", "jti", "sub"], "verify_exp": verify_exp},
        )
    except (jwt.PyJWTError, KeyError):
        return None
