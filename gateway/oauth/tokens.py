"""RFC 9068 JWT access tokens: minting and (for introspection/revocation) verifying.

Claims: `sub` is the consumer for a client's own token, the username for an end user's
token (which also carries `customer_id`); an exchanged token (RFC 8693) carries the user
as `sub` and the acting service as `act: {"sub": client_id}` and `client_id`."""

from __future__ import annotations

import math
import secrets
import time
from typing import Any

import jwt

from gateway.oauth.keys import KeyRing
from gateway.registry import ClientRecord, UserRecord

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105


def mint_access_token(
    ring: KeyRing,
    client: ClientRecord,
    scopes: list[str],
    plan: str | None,
    *,
    user: UserRecord | None = None,
    act: dict[str, Any] | None = None,
    ttl: int | None = None,
) -> tuple[str, dict[str, Any]]:
    """Sign an access token for `client` (for `user` when given; `act`: the RFC 8693
    actor chain of an exchanged token); returns (token, claims)."""
    kid, alg, key = ring.signing_key()
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ring.issuer,
        "sub": user.username if user is not None else client.consumer_id,
        "aud": ring.audience,
        "exp": now + (ring.token_ttl if ttl is None else ttl),
        "iat": now,
        "jti": secrets.token_urlsafe(16),
        "client_id": client.client_id,
        "scope": " ".join(scopes),
        "tg_kind": client.kind,
    }
    if user is not None:
        claims["customer_id"] = user.customer_id
    if act is not None:
        claims["act"] = act
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
        claims: dict[str, Any] = jwt.decode(
            token,
            ring.public_keys()[kid],
            algorithms=[alg],
            audience=ring.audience,
            issuer=ring.issuer,
            options={"require": ["exp", "iat", "jti", "sub"], "verify_exp": verify_exp},
        )
    except (jwt.PyJWTError, KeyError):
        return None
    return claims if _numeric_dates(claims) else None


def _numeric_dates(claims: dict[str, Any]) -> bool:
    """exp, iat and nbf are finite numbers a float holds (RFC 7519 §2 NumericDate).

    pyjwt reads JSON with Python's reader (NaN, Infinity, 10**400 all parse) and does not
    check exp when told not to: without this, revocation would store NaN or fail with 500.
    """
    for name in ("exp", "iat", "nbf"):
        value = claims.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        try:
            if not math.isfinite(value):  # an int beyond a double raises OverflowError
                return False
        except OverflowError:
            return False
    return True
