"""Small helpers shared by the OAuth tests."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import jwt

from gateway.registry import Registry


def provision_client(
    registry_url: str, name: str, scopes: list[str], **kwargs: Any
) -> tuple[str, str]:
    """Create a client straight in the registry (own engine, own loop); (client_id, secret)."""

    async def create() -> tuple[str, str]:
        registry = Registry.from_url(registry_url)
        try:
            await registry.start()
            client, secret = await registry.create_client(name, scopes, **kwargs)
            return client.client_id, secret
        finally:
            await registry.aclose()

    return asyncio.run(create())


def verify_with_served_jwks(
    base_url: str, token: str, audience: str = "tiergate"
) -> dict[str, Any]:
    jwks = httpx.get(f"{base_url}/.well-known/jwks.json").json()
    header = jwt.get_unverified_header(token)
    key = jwt.PyJWKSet.from_dict(jwks)[header["kid"]]
    return jwt.decode(token, key.key, algorithms=[header["alg"]], audience=audience)


def token_request(base_url: str, client_id: str, secret: str, **form: str) -> httpx.Response:
    return httpx.post(
        f"{base_url}/oauth/token",
        data={"grant_type": "client_credentials", **form},
        auth=(client_id, secret),
    )
