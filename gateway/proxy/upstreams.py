"""Builds every API's target pool at start-up and owns the transports' lifetimes."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from gateway.config.errors import ConfigError
from gateway.config.models import ApiConfig, GatewayConfig
from gateway.config.targets import DEFAULT_SET, WeightedTargets
from gateway.config.tls import UpstreamTLSConfig
from gateway.proxy.aiohttp_transport import AiohttpTransport
from gateway.proxy.balancer import Target, TargetPool
from gateway.proxy.canary import Canary
from gateway.proxy.h1_transport import H1Transport
from gateway.proxy.health import HealthChecker
from gateway.proxy.inprocess import AsgiTransport, load_asgi
from gateway.proxy.transport import Transport

# Key in an in-process app's lifespan state: the gateway app itself, so that a tier
# API can call the tier below through the gateway without a socket.
GATEWAY_STATE_KEY = "tiergate.gateway"
# Key in an in-process app's lifespan state: its service credentials
# ({"client_id", "client_secret", "token_endpoint"}), provisioned by the OAuth
# component into Services.service_credentials[api_name] before the upstreams start.
CREDENTIALS_STATE_KEY = "tiergate.service_credentials"


class Upstreams:
    def __init__(
        self,
        config: GatewayConfig,
        gateway_app: Any = None,
        http: Transport | None = None,
        credentials: Mapping[str, dict[str, str]] | None = None,
    ) -> None:
        self.config = config
        self.gateway_app = gateway_app
        self.credentials = credentials if credentials is not None else {}
        self.http: Transport = http or H1Transport()
        # TLS upstreams: the lean client speaks plain HTTP only; aiohttp verifies
        # certificates against the system's CAs (SSL_CERT_FILE/SSL_CERT_DIR honoured).
        self.tls: Transport | None = None
        self._asgi: dict[str, AsgiTransport] = {}
        self._own_tls: dict[str, AiohttpTransport] = {}  # APIs with their own upstream.tls
        self._pools: dict[str, TargetPool] = {}  # each API's default target set
        self._canaries: dict[str, Canary] = {}
        self._sets: dict[str, list[TargetPool]] = {}  # each API's sets, default first
        self._tasks: dict[str, list[asyncio.Task]] = {}  # API name → its active health checks

    async def start(self) -> None:
        for api in self.config.apis:
            await self._start_api(api)

    async def _start_api(self, api: ApiConfig) -> None:
        upstream = api.upstream
        sets = {DEFAULT_SET: upstream, **upstream.target_sets}
        pools = {
            name: TargetPool(await self._targets(spec, api.name), upstream, name=name)
            for name, spec in sets.items()
        }
        self._pools[api.name] = pools[DEFAULT_SET]
        self._sets[api.name] = list(pools.values())
        if upstream.canary is not None:
            pool = pools[upstream.canary.target_set]
            self._canaries[api.name] = Canary(upstream.canary, pool, api.name)
        if upstream.health_check is not None:
            self._tasks[api.name] = [  # every target is probed, whatever its set
                asyncio.create_task(HealthChecker(pool, upstream.health_check).run())
                for pool in pools.values()
            ]

    async def _targets(self, spec: WeightedTargets, api: str) -> list[Target]:
        return [
            Target(url.rstrip("/"), await self._transport(url, api), weight=weight)
            for url, weight in zip(spec.targets, spec.weights, strict=True)
        ]

    async def successor(
        self, config: GatewayConfig, keep: Collection[str]
    ) -> tuple[Upstreams, list[TargetPool], list[asyncio.Task]]:
        """The upstreams of a reloaded `config`, sharing this one's transports.

        The pools (breakers, health, round-robin position, canary) of the APIs named in
        `keep` carry over; the others are built afresh. Returns the new upstreams, the
        pools no longer used and their health-check tasks, for the caller to drain and stop.
        """
        new = Upstreams(config, self.gateway_app, self.http, self.credentials)
        new.tls, new._asgi = self.tls, self._asgi
        try:
            for api in config.apis:
                name = api.name
                if name in keep and name in self._pools:
                    new._pools[name], new._sets[name] = self._pools[name], self._sets[name]
                    if name in self._canaries:
                        new._canaries[name] = self._canaries[name]
                    if name in self._own_tls:
                        new._own_tls[name] = self._own_tls[name]
                    if name in self._tasks:
                        new._tasks[name] = self._tasks[name]
                else:
                    await new._start_api(api)
        except BaseException:
            for name, tasks in new._tasks.items():
                if self._tasks.get(name) is not tasks:
                    for task in tasks:
                        task.cancel()
            raise
        kept = {id(pool) for pools in new._sets.values() for pool in pools}
        retired = [p for pools in self._sets.values() for p in pools if id(p) not in kept]
        running = {id(task) for tasks in new._tasks.values() for task in tasks}
        stopped = [t for tasks in self._tasks.values() for t in tasks if id(t) not in running]
        return new, retired, stopped

    async def _transport(self, url: str, api: str) -> Transport:
        if url.startswith("https:"):
            own = self.config.api(api).upstream.tls
            if own is not None:
                if api not in self._own_tls:
                    index = [a.name for a in self.config.apis].index(api)
                    where = f"apis[{index}].upstream.tls"
                    self._own_tls[api] = upstream_tls_transport(own, self.config, where)
                return self._own_tls[api]
            self.tls = self.tls or AiohttpTransport()
            return self.tls
        if not url.startswith("asgi:"):
            return self.http
        if url not in self._asgi:
            state = {
                GATEWAY_STATE_KEY: self.gateway_app,
                CREDENTIALS_STATE_KEY: self.credentials.get(api),
            }
            transport = AsgiTransport(load_asgi(url), state)
            await transport.startup()
            self._asgi[url] = transport
        return self._asgi[url]

    def pool(self, api: str) -> TargetPool:
        return self._pools[api]

    def tls_context(self, api: str) -> ssl.SSLContext | None:
        """The API's own client TLS context (`upstream.tls`), once started; else None."""
        own = self._own_tls.get(api)
        return own.ssl_context if own is not None else None

    def canary(self, api: str) -> Canary | None:
        return self._canaries.get(api)

    def state(self) -> dict[str, list[dict[str, object]]]:
        return {
            name: [target for pool in pools for target in pool.state()]
            for name, pools in self._sets.items()
        }

    async def aclose(self) -> None:
        tasks = [task for per_api in self._tasks.values() for task in per_api]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for transport in self._asgi.values():
            await transport.aclose()
        await self.http.aclose()
        if self.tls is not None:
            await self.tls.aclose()
        for own in self._own_tls.values():
            await own.aclose()


def upstream_tls_transport(
    tls: UpstreamTLSConfig, config: GatewayConfig, where: str
) -> AiohttpTransport:
    """An https client for one API: its CA bundle, client certificate and server name.
    Files are relative to the config file; one that cannot be loaded stops start-up."""
    base = config.source.parent if config.source else Path.cwd()
    try:
        context = ssl.create_default_context(cafile=str(base / tls.ca) if tls.ca else None)
        if tls.cert is not None and tls.key is not None:
            context.load_cert_chain(str(base / tls.cert), str(base / tls.key))
    except (OSError, ssl.SSLError) as error:
        reason = getattr(error, "reason", None) or getattr(error, "strerror", None) or error
        problem = f"cannot load the upstream TLS files: {reason}"
        source = str(config.source or "configuration")
        raise ConfigError(source, [(where, problem)]) from None
    return AiohttpTransport(ssl_context=context, server_name=tls.server_name)
