"""Registry records in the shapes authlib's grants ask for (rfc6749 ClientMixin,
AuthorizationCodeMixin, TokenMixin)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from authlib.oauth2.rfc6749 import AuthorizationCodeMixin, ClientMixin, TokenMixin

from gateway.registry import AuthorizationCodeRecord, ClientRecord, RefreshFamilyRecord

TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
CONFIDENTIAL_METHODS = ("client_secret_basic", "client_secret_post")
_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3


def granted_scopes(requested: str | None, allowed: frozenset[str]) -> list[str] | None:
    """Requested ⊆ allowed (RFC 6749 §3.3); nothing asked means all of `allowed`;
    None when malformed or too wide."""
    if requested is None or not requested.strip():
        return sorted(allowed)
    wanted = requested.split(" ")
    if any(not _SCOPE_TOKEN.fullmatch(s) for s in wanted) or not set(wanted) <= allowed:
        return None
    return list(dict.fromkeys(wanted))


@dataclass(frozen=True, slots=True)
class OAuthClient(ClientMixin):
    record: ClientRecord

    @property
    def client_id(self) -> str:
        return self.record.client_id

    def get_client_id(self) -> str:
        return self.record.client_id

    def get_default_redirect_uri(self) -> str | None:
        return None  # every authorization request names its redirect URI

    def get_allowed_scope(self, scope: str | None) -> str | None:
        scopes = granted_scopes(scope, self.record.scopes)
        return None if scopes is None else " ".join(scopes)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.record.redirect_uris  # exact string match (RFC 9700)

    def check_client_secret(self, client_secret: str) -> bool:
        return False  # client authentication is gateway.oauth.client_auth's job

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.record.public_client:
            return method == "none"
        return method in CONFIDENTIAL_METHODS

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.record.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        if grant_type == TOKEN_EXCHANGE:
            return self.record.kind == "service"
        return grant_type in self.record.grant_types


@dataclass(frozen=True, slots=True)
class AuthorizationCode(AuthorizationCodeMixin):
    record: AuthorizationCodeRecord

    @property
    def code_challenge(self) -> str:
        return self.record.code_challenge

    @property
    def code_challenge_method(self) -> str:
        return self.record.code_challenge_method

    def get_redirect_uri(self) -> str:
        return self.record.redirect_uri

    def get_scope(self) -> str:
        return self.record.scope


@dataclass(frozen=True, slots=True)
class RefreshToken(TokenMixin):
    """A refresh token already spent by rotation; its family gets the next one."""

    family: RefreshFamilyRecord

    def check_client(self, client: OAuthClient) -> bool:
        return client.client_id == self.family.client_id

    def get_scope(self) -> str:
        return self.family.scope

    def get_expires_in(self) -> int:
        return max(0, int(self.family.expires_at - time.time()))

    def is_expired(self) -> bool:
        return self.family.expires_at <= time.time()

    def is_revoked(self) -> bool:
        return False
