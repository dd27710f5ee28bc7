"""Admin API for identity: consumers, applications, OAuth clients, API keys, plans,
usage and signing keys. Secrets appear only in the response that creates them."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from gateway.admin.auth import require_admin
from gateway.components import Component
from gateway.config.models import CUSTOMER_ID_PATTERN, NAME_PATTERN, GatewayConfig
from gateway.oauth.keys import rotate_signing_key
from gateway.oauth.service_secrets import remember_secret
from gateway.problem import Answer, ProblemResponse
from gateway.registry import Conflict, NotFound, Registry, RegistryError
from gateway.registry.plans import (
    unknown_apis,
    unknown_operations,
    unknown_plan,
)
from gateway.services import CredentialsTable

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
SCOPE_PATTERN = r"^[\x21\x23-\x5b\x5d-\x7e]{1,128}$"
BAD_JSON = "The body must be a JSON object."
Model = TypeVar("Model", bound=BaseModel)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _json_integer(value: Any) -> Any:
    """JSON Schema integers include 1.0; strings and booleans are not integers."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


JsonInt = Annotated[int, BeforeValidator(_json_integer)]


class NewConsumer(_Body):
    id: str = Field(pattern=ID_PATTERN)
    plan: str | None = Field(None, pattern=ID_PATTERN)
    description: str = Field("", max_length=500)


class NewApplication(_Body):
    consumer: str = Field(pattern=ID_PATTERN)
    name: str = Field(min_length=1, max_length=128)


class NewClient(_Body):
    name: str = Field(pattern=ID_PATTERN)
    scopes: list[str] = Field(default_factory=list, max_length=100)
    consumer: str | None = Field(None, pattern=ID_PATTERN)
    application: str | None = Field(None, max_length=64)
    plan: str | None = Field(None, pattern=ID_PATTERN)


class NewKey(_Body):
    consumer: str = Field(pattern=ID_PATTERN)
    plan: str = Field(pattern=ID_PATTERN)
    apis: list[Annotated[str, Field(pattern=NAME_PATTERN)]] = Field(min_length=1, max_length=100)
    expires_in: JsonInt | None = Field(None, ge=1, le=10 * 365 * 86400)
    scopes: list[Annotated[str, Field(pattern=r"^[\x21\x23-\x5b\x5d-\x7e]+$")]] = Field(
        default_factory=list, max_length=100
    )
    operations: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, max_length=500
    )


class NewUser(_Body):
    username: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)
    password: str = Field(min_length=8, max_length=1024, repr=False)


class Rotation(_Body):
    overlap_seconds: JsonInt = Field(3600, ge=0, le=30 * 86400)


class IdentityAdminComponent(Component):
    name = "identity-admin"

    def __init__(
        self, config: GatewayConfig, registry: Registry, credentials: CredentialsTable
    ) -> None:
        self.config = config
        self.registry = registry
        self.credentials = credentials  # the embedded services' identities (OAuth start)

    def admin_routes(self) -> list[BaseRoute]:
        token = self.config.admin_token
        table = [
            ("/admin/consumers", self.list_consumers, "GET"),
            ("/admin/consumers", self.create_consumer, "POST"),
            ("/admin/consumers/{consumer_id}", self.get_consumer, "GET"),
            ("/admin/applications", self.list_applications, "GET"),
            ("/admin/applications", self.create_application, "POST"),
            ("/admin/clients", self.list_clients, "GET"),
            ("/admin/clients", self.create_client, "POST"),
            ("/admin/clients/{client_id}", self.get_client, "GET"),
            ("/admin/clients/{client_id}/revoke", self.revoke_client, "POST"),
            ("/admin/clients/{client_id}/rotate", self.rotate_client, "POST"),
            ("/admin/keys", self.list_keys, "GET"),
            ("/admin/keys", self.create_key, "POST"),
            ("/admin/keys/{key_id}", self.get_key, "GET"),
            ("/admin/keys/{key_id}/revoke", self.revoke_key, "POST"),
            ("/admin/keys/{key_id}/rotate", self.rotate_key, "POST"),
            ("/admin/users", self.list_users, "GET"),
            ("/admin/users", self.create_user, "POST"),
            ("/admin/users/{username}", self.get_user, "GET"),
            ("/admin/users/{username}/disable", self.disable_user, "POST"),
            ("/admin/plans", self.list_plans, "GET"),
            ("/admin/usage", self.usage, "GET"),
            ("/admin/signing-keys", self.list_signing_keys, "GET"),
            ("/admin/signing-keys/rotate", self.rotate_signing_keys, "POST"),
        ]
        by_path: dict[str, dict[str, Any]] = {}
        for path, endpoint, method in table:
            by_path.setdefault(path, {})[method] = endpoint
        return [
            Route(path, _AnyMethod(require_admin(token, _dispatch(methods))))
            for path, methods in by_path.items()
        ]

    # -- consumers and applications ---------------------------------------------------

    async def list_consumers(self, request: Request) -> Response:
        return _items([c.public() for c in await self.registry.list_consumers()])

    async def create_consumer(self, request: Request) -> Answer:
        body = await _parse(request, NewConsumer)
        if body.plan and (why := unknown_plan(self.config, body.plan)):
            return _problem(404, why)
        consumer = await self.registry.create_consumer(body.id, body.plan, body.description)
        return JSONResponse(consumer.public(), status_code=201)

    async def get_consumer(self, request: Request) -> Answer:
        consumer = await self.registry.consumer(request.path_params["consumer_id"])
        if consumer is None:
            return _problem(404, "No such consumer.")
        return JSONResponse(consumer.public())

    async def list_applications(self, request: Request) -> Response:
        return _items([a.public() for a in await self.registry.list_applications()])

    async def create_application(self, request: Request) -> Response:
        body = await _parse(request, NewApplication)
        app = await self.registry.create_application(body.consumer, body.name)
        return JSONResponse(app.public(), status_code=201)

    # -- OAuth clients ---------------------------------------------------------------------

    async def list_clients(self, request: Request) -> Response:
        return _items([c.public() for c in await self.registry.list_clients()])

    async def create_client(self, request: Request) -> Answer:
        body = await _parse(request, NewClient)
        if body.plan and (why := unknown_plan(self.config, body.plan)):
            return _problem(404, why)
        if any(not _valid_scope(s) for s in body.scopes):
            return _problem(400, "A scope may not contain spaces, quotes or backslashes.")
        client, secret = await self.registry.create_client(
            body.name,
            body.scopes,
            consumer=body.consumer,
            plan=body.plan,
            application=body.application,
        )
        return JSONResponse(
            {**client.public(), "client_secret": secret}, status_code=201, headers=_NO_STORE
        )

    async def get_client(self, request: Request) -> Answer:
        client = await self.registry.client(request.path_params["client_id"])
        if client is None:
            return _problem(404, "No such client.")
        return JSONResponse(client.public())

    async def revoke_client(self, request: Request) -> Response:
        client = await self.registry.revoke_client(request.path_params["client_id"])
        return JSONResponse(client.public())

    async def rotate_client(self, request: Request) -> Response:
        body = await _parse(request, Rotation, empty_ok=True)
        client, secret = await self.registry.rotate_client_secret(
            request.path_params["client_id"], body.overlap_seconds
        )
        self._use_rotated_secret(client.client_id, client.api, secret)
        return JSONResponse(
            {**client.public(), "client_secret": secret}, status_code=201, headers=_NO_STORE
        )

    # -- end users (`tiergate users ...`) -----------------------------------------------

    async def list_users(self, request: Request) -> Response:
        return _items([u.public() for u in await self.registry.list_users()])

    async def create_user(self, request: Request) -> Answer:
        body = await _parse(request, NewUser)
        try:
            user = await self.registry.create_user(body.username, body.password, body.customer_id)
        except Conflict:
            raise  # 409, as everywhere
        except RegistryError as error:
            return _problem(400, str(error))
        return JSONResponse(user.public(), status_code=201, headers=_NO_STORE)

    async def get_user(self, request: Request) -> Answer:
        user = await self.registry.user(request.path_params["username"])
        if user is None:
            return _problem(404, "No such user.")
        return JSONResponse(user.public())

    async def disable_user(self, request: Request) -> Response:
        user = await self.registry.disable_user(request.path_params["username"])
        return JSONResponse(user.public())

    # -- API keys ----------------------------------------------------------------------------

    async def list_keys(self, request: Request) -> Response:
        now = time.time()
        return _items([k.public(now) for k in await self.registry.list_api_keys()])

    async def create_key(self, request: Request) -> Answer:
        body = await _parse(request, NewKey)
        why = (
            unknown_plan(self.config, body.plan)
            or unknown_apis(self.config, body.apis)
            or (
                unknown_operations(self.config, body.apis, body.operations)
                if body.operations
                else None
            )
        )
        if why:
            return _problem(404, why)
        record, plaintext = await self.registry.create_api_key(
            body.consumer, body.plan, body.apis, body.expires_in, body.scopes, body.operations
        )
        return JSONResponse(
            {**record.public(time.time()), "key": plaintext}, status_code=201, headers=_NO_STORE
        )

    async def get_key(self, request: Request) -> Answer:
        record = await self.registry.api_key(request.path_params["key_id"])
        if record is None:
            return _problem(404, "No such API key.")
        return JSONResponse(record.public(time.time()))

    async def revoke_key(self, request: Request) -> Response:
        record = await self.registry.revoke_api_key(request.path_params["key_id"])
        return JSONResponse(record.public(time.time()))

    async def rotate_key(self, request: Request) -> Response:
        body = await _parse(request, Rotation, empty_ok=True)
        record, plaintext = await self.registry.rotate_api_key(
            request.path_params["key_id"], body.overlap_seconds
        )
        return JSONResponse(
            {**record.public(time.time()), "key": plaintext}, status_code=201, headers=_NO_STORE
        )

    # -- plans, usage, signing keys ------------------------------------------------------

    async def list_plans(self, request: Request) -> Response:
        plans = sorted(self.config.plans.items())
        return _items([{"name": name, **plan.model_dump(mode="json")} for name, plan in plans])

    async def usage(self, request: Request) -> Response:
        now = time.time()
        keys = [
            {
                "id": k.id,
                "prefix": k.prefix,
                "consumer": k.consumer_id,
                "state": k.state(now),
                "last_used_at": k.last_used_at,
            }
            for k in await self.registry.list_api_keys()
        ]
        clients = [
            {
                "client_id": c.client_id,
                "consumer": c.consumer_id,
                "tokens_issued": c.tokens_issued,
                "last_token_at": c.last_token_at,
            }
            for c in await self.registry.list_clients()
        ]
        return JSONResponse({"keys": keys, "clients": clients})

    async def list_signing_keys(self, request: Request) -> Response:
        keys = [
            {
                "kid": k.kid,
                "alg": k.alg,
                "created_at": k.created_at,
                "activates_at": k.activates_at,
                "retire_after": k.retire_after,
            }
            for k in await self.registry.signing_keys()
        ]
        return _items(keys)

    async def rotate_signing_keys(self, request: Request) -> Response:
        key = await rotate_signing_key(self.registry, self.config.oauth)
        return JSONResponse(
            {"kid": key.kid, "alg": key.alg, "activates_at": key.activates_at}, status_code=201
        )

    def _use_rotated_secret(self, client_id: str, api: str | None, secret: str) -> None:
        """An embedded service's rotated secret: kept for restarts and used from now on."""
        held = self.credentials.get(api or "")
        if held is None or held.get("client_id") != client_id:
            return
        remember_secret(self.config.registry_url, client_id, secret)
        held["client_secret"] = secret


_NO_STORE = {"Cache-Control": "no-store"}


class _AnyMethod:
    """An ASGI endpoint taking every method, so the dispatcher answers 405 with Allow."""

    def __init__(self, endpoint: Any) -> None:
        self.endpoint = endpoint

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = await self.endpoint(Request(scope, receive))
        await response(scope, receive, send)


class _BadBody(Exception):
    pass


def _dispatch(methods: dict[str, Any]) -> Any:
    """One route per path: pick the method's handler and map registry errors to problems."""

    allowed = ", ".join(sorted({*methods, "HEAD"} if "GET" in methods else methods))

    async def endpoint(request: Request) -> Answer:
        handler = methods.get(request.method if request.method != "HEAD" else "GET")
        if handler is None:
            detail = f"{request.method} is not allowed here; allowed: {allowed}."
            return ProblemResponse(405, detail, headers=[("allow", allowed)])
        try:
            response: Response = await handler(request)
        except _BadBody as error:
            return _problem(400, str(error))
        except NotFound as error:
            return _problem(404, str(error))
        except Conflict as error:
            return _problem(409, str(error))
        return response

    return endpoint


async def _parse(request: Request, model: type[Model], empty_ok: bool = False) -> Model:
    raw = await request.body()
    if not raw.strip() and empty_ok:
        return model()
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise _BadBody(BAD_JSON) from None
    if not isinstance(data, dict):
        raise _BadBody(BAD_JSON)
    try:
        return model.model_validate(data)
    except ValidationError as error:
        fields = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'body'}: {e['msg']}" for e in error.errors()
        )
        raise _BadBody(f"Invalid request body: {fields}.") from None


def _valid_scope(scope: str) -> bool:
    return 0 < len(scope) <= 128 and all(c not in ' "\\' and 0x21 <= ord(c) <= 0x7E for c in scope)


def _items(items: list[dict[str, Any]]) -> Response:
    return JSONResponse({"items": items})


def _problem(status: int, detail: str) -> Answer:
    return ProblemResponse(status, detail)
