"""Parts of the gateway that own state or endpoints beside the request path
(registry, OAuth server, catalogue, metrics...): the base class. `gateway.stack`
builds them in start-up order, each given exactly what it uses.

A component contributes routes to the public shell and/or the admin listener and
opens/closes what it owns in start()/stop(); the gateway starts them in the order
it is given and stops them in reverse. A component that needs the running gateway
(the catalogue calls it in-process, a reload swaps its routes) is given to the
Gateway as a factory, called with the gateway once it exists. No component changes
the gateway: the services it provides are handed over in `gateway.services.Services`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from starlette.routing import BaseRoute

if TYPE_CHECKING:
    from gateway.app import Gateway


class Component:
    """Base with no-op hooks; subclasses override what they need."""

    name = "component"

    def public_routes(self) -> list[BaseRoute]:
        return []

    def admin_routes(self) -> list[BaseRoute]:
        return []

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class ComponentFactory(Protocol):
    """Builds a component that reads the running gateway (its routes, listeners, pools)."""

    def __call__(self, gateway: Gateway) -> Component: ...
