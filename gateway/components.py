"""Parts of the gateway that own state or endpoints beside the request path
(registry, OAuth server, catalogue, metrics...). Listed here in start-up order.

A component is built from the Gateway at construction time, contributes routes to
the public shell and/or the admin listener, and opens/closes what it owns in
start()/stop(). Whatever policies need at build time goes into `gateway.services`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from gateway.app import Gateway


class Component:
    """Base with no-op hooks; subclasses override what they need."""

    name = "component"

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def public_routes(self) -> list[BaseRoute]:
        return []

    def admin_routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class ComponentFactory(Protocol):
    def __call__(self, gateway: Gateway) -> Component: ...


def component_factories() -> list[Callable[[Gateway], Component]]:
    """Start-up order: stores first, then what uses them."""
    from gateway.admin.identity import IdentityAdminComponent
    from gateway.cache import CacheComponent
    from gateway.catalogue.component import CatalogueComponent
    from gateway.limits.component import LimitsComponent
    from gateway.oauth.component import OAuthComponent
    from gateway.observability.component import ObservabilityComponent
    from gateway.registry.component import RegistryComponent
    from gateway.reload.component import ReloadComponent

    return [
        RegistryComponent,
        OAuthComponent,
        IdentityAdminComponent,
        LimitsComponent,
        CacheComponent,
        ObservabilityComponent,
        CatalogueComponent,
        ReloadComponent,
    ]
