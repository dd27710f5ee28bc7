"""The grants this server offers, as authlib subclasses: client_credentials,
authorization_code with PKCE S256 required (RFC 7636, RFC 9700 §2.1.1) and refresh_token
with rotation (RFC 9700 §4.14). No implicit grant and no password grant (RFC 9700 §2.1.2,
§2.4): they are never registered."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, InvalidScopeError
from authlib.oauth2.rfc7636 import CodeChallenge

from gateway.oauth.errors import BAD_SCOPE
from gateway.oauth.models import CONFIDENTIAL_METHODS, AuthorizationCode, RefreshToken
from gateway.registry import UserRecord

if TYPE_CHECKING:
    from gateway.oauth.server import StarletteAuthorizationServer

ANY_CLIENT = [*CONFIDENTIAL_METHODS, "none"]
S256 = "S256"
PKCE_REQUIRED = "A PKCE code_challenge with code_challenge_method=S256 is required."
ONLY_S256 = "Only code_challenge_method=S256 is supported."


class S256CodeChallenge(CodeChallenge):
    """PKCE for every authorization request, S256 only: `plain` and a missing method
    (which RFC 7636 reads as plain) are refused."""

    DEFAULT_CODE_CHALLENGE_METHOD = S256
    SUPPORTED_CODE_CHALLENGE_METHOD = [S256]

    def validate_code_challenge(self, grant: Any, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge"):
            raise InvalidRequestError(PKCE_REQUIRED)
        if data.get("code_challenge_method") != S256:
            raise InvalidRequestError(ONLY_S256)
        super().validate_code_challenge(grant, redirect_uri)


class _Grant:
    server: StarletteAuthorizationServer

    def _user(self, username: str) -> UserRecord | None:
        user = self.server.run(self.server.registry.user(username))
        return user if user is not None and not user.disabled else None


class ClientCredentialsGrant(_Grant, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(CONFIDENTIAL_METHODS)

    def validate_requested_scope(self) -> None:
        scope = self.request.client.get_allowed_scope(self.request.payload.scope)
        if scope is None:
            raise InvalidScopeError(description=BAD_SCOPE)
        self.request.scope = scope

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        token = self.generate_token(scope=self.request.scope, include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class AuthorizationCodeGrant(_Grant, grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_CLIENT

    def save_authorization_code(self, code: str, request: Any) -> None:
        self.server.run(
            self.server.registry.save_authorization_code(
                code,
                client_id=request.client.client_id,
                username=request.user.username,
                redirect_uri=request.payload.redirect_uri,
                scope=request.scope or "",
                code_challenge=request.payload.data["code_challenge"],
                code_challenge_method=S256,
                ttl=self.server.oauth.code_ttl,
            )
        )

    def query_authorization_code(self, code: str, client: Any) -> AuthorizationCode | None:
        """Redeems the code at once (single use, even if the request fails later)."""
        record = self.server.run(
            self.server.registry.redeem_authorization_code(code, client.client_id)
        )
        return AuthorizationCode(record) if record is not None else None

    def delete_authorization_code(self, authorization_code: AuthorizationCode) -> None:
        return None  # redeemed when queried

    def authenticate_user(self, authorization_code: AuthorizationCode) -> UserRecord | None:
        return self._user(authorization_code.record.username)

    def save_token(self, token: dict[str, Any]) -> None:
        super().save_token(token)
        client = self.request.client
        if client.check_grant_type("refresh_token"):
            code = self.request.authorization_code.record
            registry, oauth = self.server.registry, self.server.oauth
            family = self.server.run(
                registry.start_refresh_family(
                    client.client_id,
                    code.username,
                    code.scope,
                    oauth.sign_in_lifetime,
                    code.code_hash,
                )
            )
            token["refresh_token"] = self.server.run(
                registry.issue_refresh_token(family, oauth.refresh_token_ttl)
            )


class RefreshTokenGrant(_Grant, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ANY_CLIENT
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str) -> RefreshToken | None:
        """Spends the token; a token spent before revokes its whole family."""
        family = self.server.run(
            self.server.registry.use_refresh_token(refresh_token, self.request.client.client_id)
        )
        return RefreshToken(family) if family is not None else None

    def authenticate_user(self, refresh_token: RefreshToken) -> UserRecord | None:
        return self._user(refresh_token.family.username)

    def revoke_old_credential(self, refresh_token: RefreshToken) -> None:
        return None  # spent when authenticated

    def save_token(self, token: dict[str, Any]) -> None:
        super().save_token(token)
        family = self.request.refresh_token.family
        token["refresh_token"] = self.server.run(
            self.server.registry.issue_refresh_token(family.id, self.server.oauth.refresh_token_ttl)
        )
