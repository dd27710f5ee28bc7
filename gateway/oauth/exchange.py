"""RFC 8693 token exchange, for the tier APIs' service clients: a service presents the
access token of the signed-in user it is serving (`subject_token`) and gets a token to
call the tier below as that user: `sub` and `customer_id` are the user's, `client_id` and
the `tg_*` claims are the acting service's (so the tier guard judges the actor), and
`act` names the actor, nesting the chain of earlier actors (§4.1). The scope is within
the acting client's scopes; the token never outlives the subject token."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from authlib.oauth2.rfc6749.errors import (
    InvalidGrantError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
)
from authlib.oauth2.rfc6749.grants.base import BaseGrant, TokenEndpointMixin

from gateway.oauth.errors import BAD_SCOPE
from gateway.oauth.models import CONFIDENTIAL_METHODS, TOKEN_EXCHANGE, granted_scopes
from gateway.oauth.tokens import mint_access_token, verify_access_token
from gateway.registry import UserRecord

if TYPE_CHECKING:
    from gateway.oauth.server import StarletteAuthorizationServer

ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
ONLY_SERVICES = "Only the service clients of tier APIs may exchange tokens."
MISSING_SUBJECT = "'subject_token' and subject_token_type=" + ACCESS_TOKEN_TYPE + " are required."
NO_ACTOR_TOKEN = "The authenticated client is the actor: send no actor_token."  # noqa: S105
ONLY_ACCESS_TOKENS = "Only access tokens are issued: requested_token_type must be " + (
    ACCESS_TOKEN_TYPE
)
BAD_SUBJECT = "The subject token is not a valid, unrevoked access token of a signed-in user."
WRONG_AUDIENCE = "Tokens are issued for this gateway's audience only."
MAX_ACTORS = 8


class InvalidTargetError(OAuth2Error):
    """RFC 8693 §2.2.2: the audience asked for is not one this server issues for."""

    error = "invalid_target"


class TokenExchangeGrant(BaseGrant, TokenEndpointMixin):
    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = list(CONFIDENTIAL_METHODS)
    server: StarletteAuthorizationServer

    def validate_token_request(self) -> None:
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError(description=ONLY_SERVICES)
        form = self.request.form
        subject = form.get("subject_token")
        if not subject or form.get("subject_token_type") != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(description=MISSING_SUBJECT)
        if "actor_token" in form or "actor_token_type" in form:
            raise InvalidRequestError(description=NO_ACTOR_TOKEN)
        if form.get("requested_token_type", ACCESS_TOKEN_TYPE) != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(description=ONLY_ACCESS_TOKENS)
        if form.get("audience", self.server.ring.audience) != self.server.ring.audience:
            raise InvalidTargetError(description=WRONG_AUDIENCE)
        scopes = granted_scopes(self.request.payload.scope, client.record.scopes)
        if scopes is None:
            raise InvalidScopeError(description=BAD_SCOPE)
        claims = verify_access_token(self.server.ring, subject)
        user = self._subject_user(claims)
        self.request.client = client
        self.request.user = user
        self.request.scope = " ".join(scopes)
        self.request.credential = claims

    def _subject_user(self, claims: dict[str, Any] | None) -> UserRecord:
        """The user a valid, unrevoked user token of this server speaks for. The registry
        is not asked whether the user is still enabled: the token itself is accepted at the
        edge until it expires, and a call it makes may go on below (disabling a user ends
        their refresh tokens; access tokens live `token_ttl`)."""
        if claims is None or not isinstance(claims.get("customer_id"), str):
            raise InvalidGrantError(description=BAD_SUBJECT)
        if self.server.run(self.server.revocations.is_revoked_shared(str(claims["jti"]))):
            raise InvalidGrantError(description=BAD_SUBJECT)
        return UserRecord(str(claims["sub"]), claims["customer_id"], float(claims["iat"]))

    def create_token_response(self) -> tuple[int, dict[str, Any], list[tuple[str, str]]]:
        client = self.request.client
        subject: dict[str, Any] = self.request.credential
        act: dict[str, Any] = {"sub": client.client_id}
        if isinstance(subject.get("act"), dict) and _depth(subject["act"]) < MAX_ACTORS:
            act["act"] = subject["act"]
        ttl = min(self.server.ring.token_ttl, int(subject["exp"]) - int(time.time()))
        token, claims = mint_access_token(
            self.server.ring,
            client.record,
            self.request.scope.split(),
            client.record.plan,
            user=self.request.user,
            act=act,
            ttl=max(ttl, 1),
        )
        body = {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
            "scope": claims["scope"],
        }
        self.save_token(body)
        return 200, body, self.TOKEN_RESPONSE_HEADER


def _depth(act: dict[str, Any]) -> int:
    depth = 0
    while isinstance(act, dict):
        depth += 1
        act = act.get("act")  # type: ignore[assignment]
    return depth
