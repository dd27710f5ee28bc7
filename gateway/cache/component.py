"""The component that owns every API's response store and serves their purge routes."""

from __future__ import annotations

from starlette.routing import BaseRoute

from gateway.admin.cache import cache_routes
from gateway.cache.registry import CacheRegistry
from gateway.components import Component
from gateway.config.models import GatewayConfig


class CacheComponent(Component):
    name = "response-cache"

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.registry = CacheRegistry()

    def admin_routes(self) -> list[BaseRoute]:
        return cache_routes(self.registry, self.config.admin_token)

    async def stop(self) -> None:
        await self.registry.close()
