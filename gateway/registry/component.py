"""The registry component: opens the store at start-up, first of all components."""

from __future__ import annotations

from gateway.components import Component
from gateway.config.models import GatewayConfig
from gateway.registry.plans import configured_plans
from gateway.registry.store import Registry


class RegistryComponent(Component):
    name = "registry"

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config  # replaced by a reload (the plans it syncs)
        self.registry = Registry.from_url(config.registry_url)

    async def start(self) -> None:
        await self.registry.start()
        plans = configured_plans(self.config)
        if plans:
            await self.registry.sync_plans(plans)

    async def stop(self) -> None:
        await self.registry.aclose()
