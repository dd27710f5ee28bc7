"""OAuth 2.0 error responses (RFC 6749 §5.2, RFC 7009, RFC 7662): JSON, never cached."""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import (
    InvalidClientError,
    InvalidRequestError,
    InvalidScopeError,
    OAuth2Error,
    UnauthorizedClientError,
    UnsupportedGrantTypeError,
)
from starlette.responses import JSONResponse

REALM = "tiergate"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}

# Descriptions are fixed sentences: they never echo a credential.
BAD_CLIENT = "Client authentication failed: unknown client, wrong secret or revoked client."
BAD_BASIC = "The Basic credentials must be base64 of UTF-8 'client_id:client_secret'."
NO_CLIENT_AUTH = "The client must authenticate with client_secret_basic or client_secret_post."
TWO_AUTH_METHODS = "Use one client authentication method, not both Basic and form credentials."
WRONG_CONTENT_TYPE = "The body must be application/x-www-form-urlencoded."
REPEATED_PARAMETER = "The parameter '{name}' is repeated; send each parameter once."
MISSING_GRANT_TYPE = "The 'grant_type' parameter is required."
BAD_SCOPE = "The requested scope is malformed or exceeds the client's scopes."
MISSING_TOKEN = "The 'token' parameter is required."  # noqa: S105

__all__ = [
    "InvalidClientError",
    "InvalidRequestError",
    "InvalidScopeError",
    "OAuth2Error",
    "UnauthorizedClientError",
    "UnsupportedGrantTypeError",
    "error_response",
]


def error_response(error: OAuth2Error) -> JSONResponse:
    """The RFC 6749 §5.2 body; invalid_client is 401 with a Basic challenge."""
    status = 400
    headers = dict(NO_STORE)
    if error.error == InvalidClientError.error:
        status = 401
        headers["WWW-Authenticate"] = f'Basic realm="{REALM}", charset="UTF-8"'
    body = {"error": error.error}
    if error.description:
        body["error_description"] = error.description
    return JSONResponse(body, status_code=status, headers=headers)
