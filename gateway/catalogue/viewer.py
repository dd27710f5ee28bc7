"""Who is looking: internal (system/process) APIs are shown only to allowed viewers."""

from __future__ import annotations

from typing import TYPE_CHECKING

import jwt
from starlette.requests import Request

from gateway.admin.tokens import AdminTokens
from gateway.config.catalogue import CatalogueConfig

if TYPE_CHECKING:
    from gateway.oauth.keys import KeyRing
    from gateway.oauth.revocations import RevocationCache


class ViewerPolicy:
    def __init__(
        self,
        config: CatalogueConfig,
        admin: AdminTokens,
        issuer: KeyRing | None,
        revocations: RevocationCache | None,
    ) -> None:
        self.config = config
        self.admin = admin  # any admin token, read-only ones included, may read the catalogue
        self.issuer = issuer
        self.revocations = revocations

    def sees_internal(self, request: Request) -> bool:
        if self.config.anonymous_sees_internal:
            return True
        token = _bearer(request)
        if token is None:
            return False
        if self.config.admin_sees_internal and self.admin.identify(token) is not None:
            return True
        return self._token_has_scope(token)

    def _token_has_scope(self, token: str) -> bool:
        issuer = self.issuer
        scope = self.config.internal_scope
        if issuer is None or not scope:
            return False
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            key = issuer.public_keys().get(kid) if isinstance(kid, str) else None
            if key is None:
                return False
            claims = jwt.decode(
                token,
                key=key,
                algorithms=["RS256", "ES256"],
                audience=issuer.audience,
                issuer=issuer.issuer,
            )
        except jwt.PyJWTError:
            return False
        revocations = self.revocations
        if revocations is not None and revocations.is_revoked(claims.get("jti", "")):
            return False
        return scope in str(claims.get("scope", "")).split()


def _bearer(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
