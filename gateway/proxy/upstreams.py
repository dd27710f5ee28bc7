"""Builds every API's target pool at start-up and owns the transports' lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Collection
from typing import Any

from gateway.config.models import ApiConfig, GatewayConfig
from gateway.proxy.aiohttp_transport import AiohttpTransport
from gateway.proxy.balancer import Target, TargetPool
from gateway.proxy.h1_transport import H1Transport
from gateway.proxy.health import HealthChecker
from gateway.proxy.inprocess import AsgiTransport, load_asgi
from gateway.proxy.transport import Transport

# Key in an in-process app's lifespan state: the gateway app itself, so that a tier
# API can call the tier below through the gateway without a socket.
GATEWAY_STATE_KEY = "tiergate.gateway"
# Key in an in-process app's lifespan state: its service credentials
# ({"client_id", "client_secret", "token_endpoint"}), provisioned by the identity
# component into gateway.services["service_credentials"][api_name].
CREDENTIALS_STATE_KEY = "tiergate.service_credentials"


class Upstreams:
    def __init__(
        self, config: GatewayConfig, gateway_app: Any = None, http: Transport | None = None
    ) -> None:
        self.config = config
        self.gateway_app = gateway_app
        self.http: Transport = http or H1Transport()
        # TLS upstreams: the lean client speaks plain HTTP only; aiohttp verifies
        # certificates against the system's CAs (SSL_CERT_FILE/SSL_CERT_DIR honoured).
        self.tls: Transport | None = None
        self._asgi: dict[str, AsgiTransport] = {}
        self._pools: dict[str, TargetPool] = {}
        self._tasks: dict[str, asyncio.Task] = {}  # API name → its active health checks

    async def start(self) -> None:
        for api in self.config.apis:
            await self._start_api(api)

    async def _start_api(self, api: ApiConfig) -> None:
        targets = [
            Target(url.rstrip("/"), await self._transport(url, api.name))
            for url in api.upstream.targets
        ]
        pool = TargetPool(targets, api.upstream)
        self._pools[api.name] = pool
        if api.upstream.health_check is not None:
            checker = HealthChecker(pool, api.upstream.health_check)
            self._tasks[api.name] = asyncio.create_task(checker.run())

    async def successor(
        self, config: GatewayConfig, keep: Collection[str]
    ) -> tuple[Upstreams, list[TargetPool], list[asyncio.Task]]:
        """The upstreams of a reloaded `config`, sharing this one's transports.

        The pools (breakers, health, round-robin position) of the APIs named in `keep`
        carry over; the others are built afresh. Returns the new upstreams, the pools
        no longer used and their health-check tasks, for the caller to drain and stop.
        """
        new = Upstreams(config, self.gateway_app, self.http)
        new.tls, new._asgi = self.tls, self._asgi
        try:
            for api in config.apis:
                if api.name in keep and api.name in self._pools:
                    new._pools[api.name] = self._pools[api.name]
                    if api.name in self._tasks:
                        new._tasks[api.name] = self._tasks[api.name]
                else:
                    await new._start_api(api)
        except BaseException:
            for name, task in new._tasks.items():
                if self._tasks.get(name) is not task:
                    task.cancel()
            raise
        kept = set(map(id, new._pools.values()))
        retired = [pool for pool in self._pools.values() if id(pool) not in kept]
        running = set(map(id, new._tasks.values()))
        stopped = [task for task in self._tasks.values() if id(task) not in running]
        return new, retired, stopped

    async def _transport(self, url: str, api: str) -> Transport:
        if url.startswith("https:"):
            self.tls = self.tls or AiohttpTransport()
            return self.tls
        if not url.startswith("asgi:"):
            return self.http
        if url not in self._asgi:
            services = getattr(self.gateway_app, "services", {})
            state = {
                GATEWAY_STATE_KEY: self.gateway_app,
                CREDENTIALS_STATE_KEY: services.get("service_credentials", {}).get(api),
            }
            transport = AsgiTransport(load_asgi(url), state)
            await transport.startup()
            self._asgi[url] = transport
        return self._asgi[url]

    def pool(self, api: str) -> TargetPool:
        return self._pools[api]

    def state(self) -> dict[str, list[dict[str, object]]]:
        return {name: pool.state() for name, pool in self._pools.items()}

    async def aclose(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for transport in self._asgi.values():
            await transport.aclose()
        await self.http.aclose()
        if self.tls is not None:
            await self.tls.aclose()
