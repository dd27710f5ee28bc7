"""The authorization-server component: key ring, revocation cache, public endpoints,
and in embedded mode the service identities of in-process tier APIs."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from starlette.routing import BaseRoute

from gateway.components import Component
from gateway.config import contract_path
from gateway.config.models import ApiConfig, GatewayConfig
from gateway.limits.engine import Limiter
from gateway.oauth.demo import ensure_demo
from gateway.oauth.endpoints import OAuthEndpoints
from gateway.oauth.keys import KeyRing, ensure_signing_key
from gateway.oauth.revocations import RevocationCache
from gateway.oauth.service_secrets import load_secrets, save_secrets, secrets_path
from gateway.policies._contract import load_contract
from gateway.services import CredentialsTable
from gateway.types import Scope

INTERNAL_TOKEN_ENDPOINT = "http://tiergate.internal/oauth/token"  # noqa: S105


class OAuthComponent(Component):
    name = "oauth"

    def __init__(
        self,
        config: GatewayConfig,
        ring: KeyRing,
        revocations: RevocationCache,
        limiter: Limiter | None,
        credentials: CredentialsTable,
        client_ip: Callable[[Scope], str],
    ) -> None:
        """`credentials` is filled at start with the embedded services' identities;
        `client_ip` is the running gateway's (it follows a reload's trusted proxies)."""
        self.config = config
        self.ring = ring
        self.revocations = revocations
        self.credentials = credentials
        self.endpoints = OAuthEndpoints(
            ring.registry, ring, revocations, config.oauth, limiter, client_ip
        )
        self._tasks: list[asyncio.Task[None]] = []

    def public_routes(self) -> list[BaseRoute]:
        return self.endpoints.routes()

    async def start(self) -> None:
        await ensure_signing_key(self.ring.registry, self.ring.oauth)
        await self.ring.refresh()
        await self.revocations.refresh()
        # RFC 8414 scopes_supported: read from the contracts once, off the event loop.
        config = self.config
        self.endpoints.scopes_supported[:] = await asyncio.to_thread(_all_scopes, config)
        demo = await ensure_demo(self.ring.registry, config.oauth)
        if demo:
            print("\n".join(demo), flush=True)
        self._tasks = [
            asyncio.create_task(self.ring.run()),
            asyncio.create_task(self.revocations.run()),
        ]
        credentials = self.credentials
        path = secrets_path(config.registry_url)
        kept = load_secrets(path)
        held = dict(kept)
        for api in config.apis:
            if not _in_process(api) or not api.depends_on:
                continue
            scopes = service_scopes(config, api)
            client, secret = await self.ring.registry.provision_service_client(
                api.name, api.tier, scopes, keep=kept.get(f"svc-{api.name}")
            )
            kept[client.client_id] = secret
            credentials[api.name] = {
                "client_id": client.client_id,
                "client_secret": secret,
                "token_endpoint": INTERNAL_TOKEN_ENDPOINT,
            }
        if kept != held:
            save_secrets(path, kept)

    async def stop(self) -> None:
        self.endpoints.server.threads.shutdown(wait=False)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _in_process(api: ApiConfig) -> bool:
    return any(target.startswith("asgi:") for target in api.upstream.targets)


def service_scopes(config: GatewayConfig, api: ApiConfig) -> set[str]:
    """Every scope the APIs below `api` ask for: in their contracts' bearer requirements and
    their jwt policy (any `*scope*` key), plus `<dependency>:read` and `<dependency>:write`."""
    scopes: set[str] = set()
    for name in api.depends_on:
        dependency = config.api(name)
        scopes.update({f"{name}:read", f"{name}:write"})
        raw = dependency.policies.get("jwt", config.defaults.get("jwt"))
        _collect_scopes(raw, scopes, inside=False)
        scopes.update(_contract_scopes(config, dependency))
    return scopes


def _all_scopes(config: GatewayConfig) -> list[str]:
    """Every scope the estate's contracts and jwt policies name (RFC 8414 scopes_supported)."""
    scopes: set[str] = set()
    for api in config.apis:
        scopes.update(_contract_scopes(config, api))
        raw = api.policies.get("jwt", config.defaults.get("jwt"))
        _collect_scopes(raw, scopes, inside=False)
    return sorted(scopes)


def _contract_scopes(config: GatewayConfig, api: ApiConfig) -> set[str]:
    if api.contract is None:
        return set()
    contract = load_contract(contract_path(config, api.contract), validators=False)
    return {
        scope
        for operation in contract.operations
        for alternative in operation.security or ()
        for requirement in alternative
        if requirement.kind == "bearer"
        for scope in requirement.scopes
    }


def _collect_scopes(value: Any, into: set[str], inside: bool) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _collect_scopes(item, into, inside or "scope" in str(key).lower())
    elif isinstance(value, list | tuple | set):
        for item in value:
            _collect_scopes(item, into, inside)
    elif isinstance(value, str) and inside:
        into.update(value.split())
