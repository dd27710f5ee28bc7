"""The authorization server's HTTP endpoints: authorize (the sign-in page), token (the
grants of gateway.oauth.grants on authlib's AuthorizationServer), JWKS, RFC 8414
metadata, RFC 7662 introspection and RFC 7009 revocation."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.config.models import OAuthConfig
from gateway.limits.engine import Limiter
from gateway.oauth.authorize import SignInPage
from gateway.oauth.client_auth import authenticate, authenticate_client, read_form
from gateway.oauth.errors import (
    MISSING_GRANT_TYPE,
    MISSING_TOKEN,
    NO_STORE,
    InvalidRequestError,
    OAuth2Error,
    UnauthorizedClientError,
    error_response,
)
from gateway.oauth.exchange import TokenExchangeGrant
from gateway.oauth.grants import (
    AuthorizationCodeGrant,
    ClientCredentialsGrant,
    RefreshTokenGrant,
    S256CodeChallenge,
)
from gateway.oauth.keys import KeyRing
from gateway.oauth.models import CONFIDENTIAL_METHODS, TOKEN_EXCHANGE
from gateway.oauth.revocations import RevocationCache
from gateway.oauth.server import StarletteAuthorizationServer
from gateway.oauth.tokens import verify_access_token
from gateway.registry import Registry
from gateway.types import Scope

CLIENT_CREDENTIALS = "client_credentials"
AUTH_METHODS = list(CONFIDENTIAL_METHODS)
GRANT_TYPES = [CLIENT_CREDENTIALS, "authorization_code", "refresh_token", TOKEN_EXCHANGE]
NOT_YOUR_TOKEN = "The token was issued to another client."  # noqa: S105
ASSETS = Path(__file__).parent / "static"
MAX_REFRESH_TOKEN = 128  # ours are 43 characters


class OAuthEndpoints:
    def __init__(
        self,
        registry: Registry,
        ring: KeyRing,
        revocations: RevocationCache,
        oauth: OAuthConfig,
        limiter: Limiter | None,
        client_ip: Callable[[Scope], str],
    ) -> None:
        self.registry = registry
        self.ring = ring
        self.revocations = revocations
        self.server = StarletteAuthorizationServer(registry, ring, revocations, oauth)
        self.server.register_grant(ClientCredentialsGrant)
        self.server.register_grant(AuthorizationCodeGrant, [S256CodeChallenge(required=True)])
        self.server.register_grant(RefreshTokenGrant)
        self.server.register_grant(TokenExchangeGrant)
        self.sign_in = SignInPage(self.server, oauth, limiter, client_ip)
        self.scopes_supported: list[str] = []
        base = ring.issuer.rstrip("/")
        self.metadata = {
            "issuer": ring.issuer,
            "authorization_endpoint": f"{base}/oauth/authorize",
            "token_endpoint": f"{base}/oauth/token",
            "jwks_uri": f"{base}/.well-known/jwks.json",
            "introspection_endpoint": f"{base}/oauth/introspect",
            "revocation_endpoint": f"{base}/oauth/revoke",
            "grant_types_supported": GRANT_TYPES,
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": self.scopes_supported,
            "token_endpoint_auth_methods_supported": [*AUTH_METHODS, "none"],
            "introspection_endpoint_auth_methods_supported": AUTH_METHODS,
            "revocation_endpoint_auth_methods_supported": AUTH_METHODS,
            "access_token_signing_alg_values_supported": ["RS256", "ES256"],
        }

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/oauth/authorize", self.sign_in.get, methods=["GET"]),
            Route("/oauth/authorize", self.sign_in.post, methods=["POST"]),
            Mount("/oauth/static", StaticFiles(directory=ASSETS), name="oauth-static"),
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
        if not form.get("grant_type"):
            raise InvalidRequestError(description=MISSING_GRANT_TYPE)
        oauth_request = self.server.oauth2_request(request, form)
        response: Response = await self.server.in_thread(
            self.server.create_token_response, oauth_request
        )
        return response

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
        # A public client revokes its own tokens by client_id (RFC 7009 §2.1).
        client, _method = await authenticate_client(
            request.headers.get("authorization", ""), form, self.registry, allow_public=True
        )
        token = form.get("token")
        if not token:
            raise InvalidRequestError(description=MISSING_TOKEN)
        # token_type_hint is optional (§2.1): a JWT of ours is an access token, anything
        # else may be a refresh token, whose whole family ends.
        claims = verify_access_token(self.ring, token, verify_exp=False)
        if claims is not None:
            if claims.get("client_id") != client.client_id:
                raise UnauthorizedClientError(description=NOT_YOUR_TOKEN)
            await self.revocations.revoke(str(claims["jti"]), float(claims["exp"]))
        elif len(token) <= MAX_REFRESH_TOKEN:
            await self.registry.revoke_refresh_token(token, client.client_id)
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


def _oauth_errors(endpoint: Any) -> Any:
    async def handle(request: Request) -> Response:
        try:
            response: Response = await endpoint(request)
        except OAuth2Error as error:
            return error_response(error)
        return response

    return handle
