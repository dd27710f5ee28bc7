"""The authorization server's HTTP endpoints: token (client_credentials), JWKS,
RFC 8414 metadata, RFC 7662 introspection and RFC 7009 revocation."""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.oauth.client_auth import authenticate, read_form
from gateway.oauth.errors import (
    BAD_SCOPE,
    GRANT_NOT_ALLOWED,
    MISSING_GRANT_TYPE,
    MISSING_TOKEN,
    NO_STORE,
    ONLY_CLIENT_CREDENTIALS,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
    error_response,
)
from gateway.oauth.keys import KeyRing
from gateway.oauth.revocations import RevocationCache
from gateway.oauth.tokens import mint_access_token, verify_access_token
from gateway.registry import Registry

CLIENT_CREDENTIALS = "client_credentials"
AUTH_METHODS = ["client_secret_basic", "client_secret_post"]
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3
NOT_YOUR_TOKEN = "The token was issued to another client."  # noqa: S105


class OAuthEndpoints:
    def __init__(self, registry: Registry, ring: KeyRing, revocations: RevocationCache) -> None:
        self.registry = registry
        self.ring = ring
        self.revocations = revocations
        base = ring.issuer.rstrip("/")
        self.metadata = {
            "issuer": ring.issuer,
            "token_endpoint": f"{base}/oauth/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "introspection_endpoint": f"{base}/oauth/introspect",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "grant_types_supported": [CLIENT_CREDENTIALS],
            "response_types_supported": [],
            "token_endpoint_auth_methods_supported": AUTH_METHODS,
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "access_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/oauth/token", _oauth_errors(self.token), methods=["POST"]),
            Route("/oauth/introspect", _oauth_errors(self.introspect), methods=["POST"]),
            Route("/oauth/revoke", _oauth_errors(self.revoke), methods=["POST"]),
            Route("/.well-known/jwks.json", self.jwks, methods=["GET", "HEAD"]),
            Route(
                "/.well-known/oauth-authorization-server", self.discovery, methods=["GET", "HEAD"]
            ),
        ]

    async def token(self, request: Request) -> Response:
        form = await read_form(request)
        grant_type = form.get("grant_type")
        if not grant_type:
            raise InvalidRequestError(description=MISSING_GRANT_TYPE)
        if grant_type != CLIENT_CREDENTIALS:
            unsupported = UnsupportedGrantTypeError(grant_type)
            unsupported.description = ONLY_CLIENT_CREDENTIALS  # never echo the request
            raise unsupported
        client = await authenticate(request, form, self.registry)
        if CLIENT_CREDENTIALS not in client.grant_types:
            raise UnauthorizedClientError(description=GRANT_NOT_ALLOWED)
        scopes = _granted_scopes(form.get("scope"), client.scopes)
        plan = client.plan
        if plan is None:
            consumer = await self.registry.consumer(client.consumer_id)
            plan = consumer.plan if consumer else None
        token, claims = mint_access_token(self.ring, client, scopes, plan)
        await self.registry.record_token_issued(client.client_id)
        body = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
            "scope": claims["scope"],
        }
        return JSONResponse(body, headers=NO_STORE)

    async def introspect(self, request: Request) -> Response:
        form = await read_form(request)
        await authenticate(request, form, self.registry)
        token = form.get("token")
        if not token:
            raise InvalidRequestError(description=MISSING_TOKEN)
        claims = verify_access_token(self.ring, token)
        if claims is None or await self.revocations.is_revoked_shared(str(claims["jti"])):
            return JSONResponse({"active": False}, headers=NO_STORE)
        return JSONResponse({"active": True, "token_type": "Bearer", **claims}, headers=NO_STORE)

    async def revoke(self, request: Request) -> Response:
        form = await read_form(request)
        client = await authenticate(request, form, self.registry)
        token = form.get("token")
        if not token:
            raise InvalidRequestError(description=MISSING_TOKEN)
        # token_type_hint is optional and we only issue access tokens: ignore it.
        claims = verify_access_token(self.ring, token, verify_exp=False)
        if claims is not None:
            if claims.get("client_id") != client.client_id:
                raise UnauthorizedClientError(description=NOT_YOUR_TOKEN)
            await self.revocations.revoke(str(claims["jti"]), float(claims["exp"]))
        return Response(status_code=200, headers=NO_STORE)

    async def jwks(self, request: Request) -> Response:
        max_age = int(self.ring.oauth.refresh_interval)
        return JSONResponse(
            await self.ring.jwks(),
            headers={"Cache-Control": f"public, max-age={max_age}"},
            media_type="application/jwk-set+json",
        )

    async def discovery(self, request: Request) -> Response:
        return JSONResponse(self.metadata, headers={"Cache-Control": "public, max-age=300"})


def _granted_scopes(requested: str | None, allowed: frozenset[str]) -> list[str]:
    """Requested ⊆ allowed (RFC 6749 §3.3); no scope asked means all the client's scopes."""
    if requested is None or not requested.strip():
        return sorted(allowed)
    wanted = requested.split(" ")
    if any(not _SCOPE_TOKEN.match(s) for s in wanted) or not set(wanted) <= allowed:
        raise InvalidScopeError(description=BAD_SCOPE)
    return list(dict.fromkeys(wanted))


def _oauth_errors(endpoint: Any) -> Any:
    async def handle(request: Request) -> Response:
        try:
            response: Response = await endpoint(request)
        except OAuth2Error as error:
            return error_response(error)
        return response

    return handle
