"""The registry component: opens the store at start-up, first of all components."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.components import Component
from gateway.registry.plans import configured_plans
from gateway.registry.store import Registry

if TYPE_CHECKING:
    from gateway.app import Gateway


class RegistryComponent(Component):
    name = "registry"

    def __init__(self, gateway: Gateway) -> None:
        super().__init__(gateway)
        self.registry = Registry.from_url(gateway.config.registry_url)
        gateway.services["registry"] = self.registry

    async def start(self) -> None:
        await self.registry.start()
        plans = configured_plans(self.gateway.config)
        if plans:
            await self.registry.sync_plans(plans)

    async def stop(self) -> None:
        await self.registry.aclose()
