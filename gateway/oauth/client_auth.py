"""Client authentication at the token, introspection and revocation endpoints:
client_secret_basic or client_secret_post (RFC 6749 §2.3.1), never both; a public client
(no secret) names itself with `client_id` where a grant allows it ("none")."""

from __future__ import annotations

import base64
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request

from gateway.oauth.errors import (
    BAD_BASIC,
    BAD_CLIENT,
    NO_CLIENT_AUTH,
    REPEATED_PARAMETER,
    TWO_AUTH_METHODS,
    WRONG_CONTENT_TYPE,
    InvalidClientError,
    InvalidRequestError,
)
from gateway.registry import ClientRecord, Registry

MAX_FORM_BYTES = 16 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


async def read_form(request: Request) -> dict[str, str]:
    """The form parameters; a parameter sent twice is an invalid_request (RFC 6749 §3.2)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != FORM_TYPE:
        raise InvalidRequestError(description=WRONG_CONTENT_TYPE)
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise InvalidRequestError(description="The request body is too large.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError(description="The body is not valid form data.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise InvalidRequestError(description=REPEATED_PARAMETER.format(name=name[:40]))
        form[name] = value
    return form


async def authenticate(request: Request, form: dict[str, str], registry: Registry) -> ClientRecord:
    """The authenticated client, or an OAuth error (invalid_request / invalid_client)."""
    client, _method = await authenticate_client(
        request.headers.get("authorization", ""), form, registry, allow_public=False
    )
    return client


async def authenticate_client(
    authorization: str, form: dict[str, str], registry: Registry, *, allow_public: bool
) -> tuple[ClientRecord, str]:
    """(client, method): a confidential client by its secret, or with `allow_public` a
    public client by its `client_id` alone (method "none")."""
    uses_basic = authorization[:6].lower() == "basic "
    uses_post = "client_secret" in form
    if uses_basic and uses_post:
        raise InvalidRequestError(description=TWO_AUTH_METHODS)
    if uses_basic:
        client_id, secret = basic_credentials(authorization[6:])
        if form.get("client_id") not in (None, client_id):
            raise InvalidRequestError(description=TWO_AUTH_METHODS)
    elif uses_post:
        client_id, secret = form.get("client_id", ""), form["client_secret"]
    elif allow_public and form.get("client_id"):
        public = await registry.client(form["client_id"])
        if public is None or not public.public_client or public.revoked_at is not None:
            raise InvalidClientError(description=BAD_CLIENT)
        return public, "none"
    else:
        raise InvalidClientError(description=NO_CLIENT_AUTH)
    if not client_id or not secret:
        raise InvalidClientError(description=BAD_CLIENT)
    client = await registry.authenticate_client(client_id, secret)
    if client is None:
        raise InvalidClientError(description=BAD_CLIENT)
    return client, "client_secret_basic" if uses_basic else "client_secret_post"


def basic_credentials(encoded: str) -> tuple[str, str]:
    """(client_id, secret) of a Basic header (RFC 7617): strict base64 of UTF-8
    `id:secret`, each form-encoded first (RFC 6749 §2.3.1). Anything else is a client
    that failed to authenticate (401 invalid_client, §5.2), never a crash."""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        client_id, colon, secret = decoded.partition(":")
        if not colon:
            raise ValueError("no colon")
        return unquote(client_id, errors="strict"), unquote(secret, errors="strict")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise InvalidClientError(description=BAD_BASIC) from None
