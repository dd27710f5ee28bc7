"""How a tier API calls the tier below: always through the gateway.

Embedded mode: the gateway puts itself into the API's lifespan state
(``"tiergate.gateway"``) and calls go over ``httpx.ASGITransport`` to
``http://tiergate.internal`` without a socket. Distributed mode: the gateway's URL
comes from ``TIERGATE_GATEWAY_URL``. Either way the API's own service credentials
(lifespan state ``"tiergate.service_credentials"`` or ``TIERGATE_CLIENT_ID`` /
``TIERGATE_CLIENT_SECRET`` / ``TIERGATE_TOKEN_URL``) buy a client-credentials token
that is cached and renewed before it expires; without credentials calls go out
unauthenticated.

When the request being served is a signed-in user's, the gateway passes their token in
``X-Subject-Token``: the call below then carries that user. The service exchanges the
token (RFC 8693) at the built-in server for one whose `sub` is the user and whose `act`
is this service, and caches it until shortly before it expires.

Every call has a deadline, carries the incoming ``X-Request-ID`` and ``traceparent``,
and upstream failures are translated here, once, into the exceptions below.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from urllib.parse import urljoin

import httpx
from authlib.oauth2.auth import ClientAuth
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.parameters import prepare_token_request
from authlib.oauth2.rfc6749.wrappers import OAuth2Token

GATEWAY_STATE_KEY = "tiergate.gateway"
CREDENTIALS_STATE_KEY = "tiergate.service_credentials"
CLIENT_STATE_KEY = "tiergate.service_client"
INTERNAL_BASE_URL = "http://tiergate.internal"
PROPAGATED_HEADERS = ("x-request-id", "traceparent", "tracestate")
SUBJECT_TOKEN_HEADER = "x-subject-token"  # noqa: S105 - a header name
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
EXCHANGE_CACHE_SIZE = 4096
DEFAULT_TIMEOUT = 5.0
TOKEN_LEEWAY = 30  # seconds before expiry at which a token is renewed

NO_GATEWAY = (
    "{api}: no gateway to call; run it under the gateway (embedded) or set "
    "TIERGATE_GATEWAY_URL to the gateway's public URL"
)


class ServiceError(Exception):
    """A call to the tier below did not give a usable answer."""

    def __init__(
        self,
        service: str,
        reason: str,
        status: int | None = None,
        problem: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason
        self.status = status
        self.problem = problem or {}
        self.path = ""  # what was called: tells whose input the tier below refused
        self.params: Mapping[str, Any] = {}


class ServiceUnavailable(ServiceError):
    """Down, unreachable, overloaded or failing (5xx): the caller may retry later."""


class ServiceTimeout(ServiceUnavailable):
    """No answer within the deadline."""


class ServiceRejected(ServiceError):
    """The service answered 4xx: the request itself was refused."""


class ServiceNotFound(ServiceRejected):
    """404: the thing asked for does not exist."""


class ServiceConflict(ServiceRejected):
    """409: the request conflicts with the service's state (e.g. not enough stock)."""


def _translate(service: str, response: httpx.Response) -> None:
    """Raise the right ServiceError for an error response; return for 2xx/3xx."""
    if response.status_code < 400:
        return
    problem: dict[str, Any] = {}
    if "json" in response.headers.get("content-type", ""):
        try:
            body = response.json()
            problem = body if isinstance(body, dict) else {}
        except ValueError:
            problem = {}
    reason = str(problem.get("detail") or problem.get("title") or response.reason_phrase)
    status = response.status_code
    kind: type[ServiceError]
    if status == 404:
        kind = ServiceNotFound
    elif status == 409:
        kind = ServiceConflict
    elif status == 504:
        kind = ServiceTimeout
    elif status >= 500 or status == 429:
        kind = ServiceUnavailable
    else:
        kind = ServiceRejected
    raise kind(service, reason, status, problem)


class _Credentials:
    """A client-credentials token (RFC 6749 §4.4), requested with authlib's client
    authentication and token-request helpers over the API's own httpx transport, and
    renewed before expiry."""

    def __init__(
        self,
        client_id: str,
        client_secret: str,
        token_endpoint: str,
        transport: httpx.AsyncBaseTransport | None,
        base_url: str,
    ) -> None:
        self.token_endpoint = urljoin(base_url + "/", token_endpoint)
        self._auth = ClientAuth(client_id, client_secret, "client_secret_basic")
        self._http = httpx.AsyncClient(transport=transport, timeout=DEFAULT_TIMEOUT)
        self._token: OAuth2Token | None = None
        self._lock = asyncio.Lock()
        self._exchanged: dict[str, tuple[str, float]] = {}  # subject → (token, renew at)

    async def token_for(self, subject_token: str | None) -> str:
        """The token to call with: the service's own, or one exchanged for the user."""
        if not subject_token:
            return await self.access_token()
        cached = self._exchanged.get(subject_token)
        now = time.time()
        if cached is not None and cached[1] > now:
            return cached[0]
        token = await self._fetch(
            TOKEN_EXCHANGE, subject_token=subject_token, subject_token_type=ACCESS_TOKEN_TYPE
        )
        expires_in = float(token.get("expires_in", 0))
        renew_at = now + expires_in - min(TOKEN_LEEWAY, expires_in / 4)
        if len(self._exchanged) >= EXCHANGE_CACHE_SIZE:
            self._exchanged = {k: v for k, v in self._exchanged.items() if v[1] > now}
            while len(self._exchanged) >= EXCHANGE_CACHE_SIZE:
                self._exchanged.pop(next(iter(self._exchanged)))
        self._exchanged[subject_token] = (str(token["access_token"]), renew_at)
        return str(token["access_token"])

    async def _fetch(self, grant_type: str, **params: str) -> OAuth2Token:
        headers = {
            "accept": "application/json",
            "content-type": "application/x-www-form-urlencoded;charset=UTF-8",
        }
        body = prepare_token_request(grant_type, **params)
        url, headers, body = self._auth.prepare("POST", self.token_endpoint, headers, body)
        response = await self._http.post(url, headers=headers, content=body)
        try:
            answer = response.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise OAuth2Error(f"token endpoint answered {response.status_code} without JSON")
        if "error" in answer or "access_token" not in answer:
            raise OAuth2Error(
                answer.get("error_description") or f"token refused ({response.status_code})",
                error=answer.get("error"),
                status_code=response.status_code,
            )
        return OAuth2Token(answer)

    async def access_token(self) -> str:
        async with self._lock:
            token = self._token
            if token is None or token.get("expires_at", 0) - TOKEN_LEEWAY <= time.time():
                token = self._token = await self._fetch("client_credentials")
            return str(token["access_token"])

    async def aclose(self) -> None:
        await self._http.aclose()


class ServiceClient:
    """One pooled client per API for all calls to the tier below."""

    def __init__(
        self,
        api: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        base_url: str,
        credentials: Mapping[str, str] | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.api = api
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.AsyncClient(
            transport=transport,
            base_url=self.base_url,
            timeout=timeout,
            headers={"user-agent": f"tiergate-service/{api}"},
        )
        self._credentials = (
            _Credentials(
                credentials["client_id"],
                credentials["client_secret"],
                credentials["token_endpoint"],
                transport,
                self.base_url,
            )
            if credentials
            else None
        )

    @classmethod
    def from_state(
        cls, api: str, state: Mapping[str, Any], env: Mapping[str, str] | None = None
    ) -> ServiceClient:
        """Build from the API's lifespan state, else from the environment."""
        env = os.environ if env is None else env
        timeout = float(env.get("TIERGATE_SERVICE_TIMEOUT", DEFAULT_TIMEOUT))
        credentials = state.get(CREDENTIALS_STATE_KEY) or None
        if credentials is None and env.get("TIERGATE_CLIENT_ID"):
            credentials = {
                "client_id": env["TIERGATE_CLIENT_ID"],
                "client_secret": env.get("TIERGATE_CLIENT_SECRET", ""),
                "token_endpoint": env.get("TIERGATE_TOKEN_URL", "/oauth/token"),
            }
        gateway = state.get(GATEWAY_STATE_KEY)
        if gateway is not None:
            return cls(
                api,
                transport=httpx.ASGITransport(app=gateway),
                base_url=INTERNAL_BASE_URL,
                credentials=credentials,
                timeout=timeout,
            )
        url = env.get("TIERGATE_GATEWAY_URL")
        if not url:
            raise RuntimeError(NO_GATEWAY.format(api=api))
        return cls(api, base_url=url, credentials=credentials, timeout=timeout)

    async def request(
        self,
        method: str,
        path: str,
        *,
        service: str,
        incoming: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
    ) -> httpx.Response:
        """Call `path` on the gateway; raise a ServiceError unless the answer is 2xx/3xx.

        `service` names the callee in errors; `incoming` is the request being served,
        whose trace headers are passed on.
        """
        sent: dict[str, str] = {}
        if incoming is not None:
            for name in PROPAGATED_HEADERS:
                value = incoming.get(name)
                if value:
                    sent[name] = value
        sent.update(headers or {})
        deadline = deadline or self.timeout
        try:
            async with asyncio.timeout(deadline):  # ASGITransport ignores httpx timeouts
                if self._credentials is not None:
                    subject = incoming.get(SUBJECT_TOKEN_HEADER) if incoming is not None else None
                    token = await self._credentials.token_for(subject)
                    sent["authorization"] = f"Bearer {token}"
                response = await self._http.request(
                    method,
                    path,
                    params=_clean(params),
                    json=json,
                    headers=sent,
                )
        except (TimeoutError, httpx.TimeoutException):
            raise ServiceTimeout(service, f"no answer within {deadline:g} s") from None
        except httpx.HTTPError as exc:
            raise ServiceUnavailable(service, f"unreachable ({type(exc).__name__})") from exc
        except Exception as exc:  # the OAuth exchange or an in-process app blew up
            raise ServiceUnavailable(service, f"call failed ({type(exc).__name__})") from exc
        try:
            _translate(service, response)
        except ServiceError as exc:
            exc.path, exc.params = path, _clean(params) or {}
            raise
        return response

    async def get_json(self, path: str, *, service: str, **kwargs: Any) -> Any:
        return (await self.request("GET", path, service=service, **kwargs)).json()

    async def post_json(self, path: str, *, service: str, **kwargs: Any) -> Any:
        return (await self.request("POST", path, service=service, **kwargs)).json()

    async def aclose(self) -> None:
        await self._http.aclose()
        if self._credentials is not None:
            await self._credentials.aclose()


def _clean(params: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if params is None:
        return None
    return {k: v for k, v in params.items() if v is not None}


OnStarted = Callable[[ServiceClient], Coroutine[Any, Any, Any]]


class WithServiceClient:
    """ASGI wrapper: builds the API's ServiceClient from its lifespan state.

    Starlette's lifespan function cannot see the ASGI lifespan state the gateway
    hands over, so this wrapper reads it, stores the client under
    ``"tiergate.service_client"`` (every request's ``scope["state"]`` is a copy of
    the lifespan state) and closes it when the app shuts down.
    """

    def __init__(
        self,
        app: Any,
        api: str,
        env: Mapping[str, str] | None = None,
        on_started: OnStarted | None = None,
    ) -> None:
        self.app = app
        self.api = api
        self.env = env
        self.on_started = on_started  # runs as a background task once the app has started

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        client = ServiceClient.from_state(self.api, state, self.env)
        state[CLIENT_STATE_KEY] = client

        background: list[asyncio.Task[Any]] = []

        async def receive_stopping() -> Any:
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                for task in background:  # stop before the app closes what they use
                    task.cancel()
            return message

        async def send_closing(message: Any) -> None:
            if message["type"] == "lifespan.startup.complete" and self.on_started:
                background.append(asyncio.create_task(self.on_started(client)))
            if message["type"].startswith("lifespan.shutdown."):
                await client.aclose()
            await send(message)

        await self.app(scope, receive_stopping, send_closing)


def service_client(scope: Mapping[str, Any]) -> ServiceClient:
    """The ServiceClient of the API serving this request."""
    client: ServiceClient = scope["state"][CLIENT_STATE_KEY]
    return client
