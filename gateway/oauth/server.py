"""authlib's `AuthorizationServer` on starlette: the thin adapter authlib leaves to each
framework (create_oauth2_request, create_json_request, handle_response) plus the storage
callbacks, which reach the async registry.

authlib's grants are synchronous. A request is read asynchronously (form, size and
duplicate checks), then authlib runs in a worker thread; its storage callbacks hand their
registry coroutines back to the event loop and wait for them (`run`). The loop never
blocks, and grants stay exactly as authlib wrote them.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Coroutine, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from authlib.oauth2 import AuthorizationServer
from authlib.oauth2.rfc6749 import OAuth2Request
from authlib.oauth2.rfc6749.errors import OAuth2Error, UnsupportedGrantTypeError
from authlib.oauth2.rfc6749.requests import BasicOAuth2Payload, JsonRequest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.config.models import OAuthConfig
from gateway.oauth.client_auth import authenticate_client
from gateway.oauth.errors import NO_STORE, error_response
from gateway.oauth.keys import KeyRing
from gateway.oauth.models import OAuthClient
from gateway.oauth.revocations import RevocationCache
from gateway.oauth.tokens import mint_access_token
from gateway.registry import Registry, UserRecord

T = TypeVar("T")
UNSUPPORTED_GRANT = (
    "Supported grant types: client_credentials, authorization_code, refresh_token and "
    "urn:ietf:params:oauth:grant-type:token-exchange."
)
REGISTRY_WAIT = 30.0  # seconds a grant waits for one registry call
# authlib's threads mostly wait for the registry on the loop: many may wait at once, and
# apart from the default pool, where password hashing runs.
AUTHLIB_THREADS = 16


class FormRequest(OAuth2Request):
    """An OAuth2Request over an already-read, duplicate-free form (or query)."""

    def __init__(self, method: str, uri: str, headers: Mapping[str, str], data: dict[str, str]):
        # authlib refuses a plain-http URI here. Where TLS ends (the gateway's listener or
        # a proxy before it) is the deployment's choice: the check is not made here
        # (docs/oauth.md says to serve the issuer over https).
        super().__init__(method, "https://tiergate.invalid/", headers=dict(headers))
        self.uri = uri
        self._data = data
        self.payload = BasicOAuth2Payload(data)

    @property
    def args(self) -> dict[str, str]:
        return self._data if self.method == "GET" else {}

    @property
    def form(self) -> dict[str, str]:
        return self._data if self.method != "GET" else {}


class StarletteAuthorizationServer(AuthorizationServer):
    def __init__(
        self, registry: Registry, ring: KeyRing, revocations: RevocationCache, oauth: OAuthConfig
    ) -> None:
        super().__init__()
        self.registry = registry
        self.ring = ring
        self.revocations = revocations
        self.oauth = oauth
        self.loop: asyncio.AbstractEventLoop | None = None
        self.threads = ThreadPoolExecutor(AUTHLIB_THREADS, thread_name_prefix="tiergate-oauth")
        self.register_token_generator("default", self.generate_access_token)

    # -- the framework adapter ------------------------------------------------------

    def create_oauth2_request(self, request: Any) -> OAuth2Request:
        if isinstance(request, OAuth2Request):
            return request
        raise TypeError("build requests with oauth2_request()")

    def oauth2_request(self, request: Request, data: dict[str, str]) -> FormRequest:
        uri = self.ring.issuer.rstrip("/") + request.url.path
        return FormRequest(request.method, uri, request.headers, data)

    def create_json_request(self, request: Any) -> JsonRequest:
        raise NotImplementedError("no endpoint of this server takes JSON")

    def handle_response(self, status: int, body: Any, headers: Any) -> Response:
        headers = dict(headers)
        if isinstance(body, dict):
            headers.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers={**headers, **NO_STORE})
        return Response(body or b"", status_code=status, headers=headers)

    def handle_error_response(self, request: Any, error: OAuth2Error) -> Response:
        if error.redirect_uri:  # a validated redirect URI: RFC 6749 §4.1.2.1
            return self.handle_response(*error())
        if isinstance(error, UnsupportedGrantTypeError):
            error.description = UNSUPPORTED_GRANT  # never echo the request
        return error_response(error)

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        return None

    async def in_thread(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """Run an authlib entry point in a worker thread; callbacks use `run`."""
        self.loop = asyncio.get_running_loop()
        return await self.loop.run_in_executor(
            self.threads, functools.partial(call, *args, **kwargs)
        )

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """From authlib's thread: run a registry coroutine on the event loop, wait for it."""
        assert self.loop is not None
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(REGISTRY_WAIT)

    # -- storage callbacks -------------------------------------------------------------

    def query_client(self, client_id: str) -> OAuthClient | None:
        record = self.run(self.registry.client(client_id))
        if record is None or record.revoked_at is not None:
            return None
        return OAuthClient(record)

    def authenticate_client(
        self, request: OAuth2Request, methods: list[str], endpoint: str = "token"
    ) -> OAuthClient:
        authorization = request.headers.get("authorization", "")
        record, method = self.run(
            authenticate_client(
                authorization, request.form, self.registry, allow_public="none" in methods
            )
        )
        request.auth_method = method
        return OAuthClient(record)

    def save_token(self, token: dict[str, Any], request: OAuth2Request) -> None:
        self.run(self.registry.record_token_issued(request.client.client_id))

    def generate_access_token(
        self,
        grant_type: str,
        client: OAuthClient,
        user: UserRecord | None = None,
        scope: str | None = None,
        expires_in: int | None = None,
        include_refresh_token: bool = True,
    ) -> dict[str, Any]:
        """The RFC 9068 access token; grants add refresh tokens themselves (rotation)."""
        record = client.record
        plan = record.plan
        if plan is None:
            consumer = self.run(self.registry.consumer(record.consumer_id))
            plan = consumer.plan if consumer else None
        scopes = scope.split() if scope else []
        token, claims = mint_access_token(self.ring, record, scopes, plan, user=user)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": claims["exp"] - claims["iat"],
            "scope": claims["scope"],
        }
