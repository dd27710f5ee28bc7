"""Parts of the gateway that own state or endpoints beside the request path
(registry, OAuth server, catalogue, metrics...): the base class. They are listed in
start-up order in `gateway.app.COMPONENTS`.

A component is built from the Gateway at construction time, contributes routes to
the public shell and/or the admin listener, and opens/closes what it owns in
start()/stop(). Whatever policies need at build time goes into `gateway.services`.
"""

from __future__ import annotations

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
