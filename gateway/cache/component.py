"""The component that owns every API's response store and serves their purge routes."""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.admin.cache import cache_routes
from gateway.cache.registry import SERVICE, CacheRegistry
from gateway.components import Component


class CacheComponent(Component):
    name = "response-cache"

    def __init__(self, gateway: object) -> None:
        super().__init__(gateway)  # type: ignore[arg-type]
        self.registry = CacheRegistry()
        self.gateway.services[SERVICE] = self.registry

    def admin_routes(self) -> list[BaseRoute]:
        return cache_routes(self.registry, self.gateway.config.admin_token)

    async def stop(self) -> None:
        await self.registry.close()
