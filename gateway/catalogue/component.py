"""The catalogue as a gateway component: its routes, built from config at start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import swagger_ui
from starlette.requests import Request
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.admin.tokens import AdminTokens
from gateway.catalogue.model import build_catalogue
from gateway.catalogue.self_service import SelfService
from gateway.catalogue.sign_in import (
    CALLBACK_PATH,
    SIGN_IN_PATH,
    SIGN_OUT_PATH,
    CatalogueSignIn,
    Refused,
)
from gateway.catalogue.viewer import ViewerPolicy
from gateway.catalogue.views import CatalogueViews
from gateway.components import Component
from gateway.problem import Answer
from gateway.services import Services

if TYPE_CHECKING:
    from gateway.app import Gateway

SWAGGER_ASSETS = Path(swagger_ui.__file__).parent / "static"
OWN_ASSETS = Path(__file__).parent / "static"
Endpoint = Callable[[Request], Awaitable[Answer]]
NEEDS_OAUTH = "catalogue.sign_in needs the registry and the built-in authorization server"


class CatalogueComponent(Component):
    name = "catalogue"

    def __init__(self, gateway: Gateway, services: Services) -> None:
        """`gateway` is the running gateway: sign-in redeems its codes at its token
        endpoint, in-process."""
        self.config = config = gateway.config
        self.services = services
        settings = config.catalogue.sign_in
        self.sign_in = None
        if config.catalogue.enabled and settings is not None:
            if services.registry is None or services.issuer is None:
                raise RuntimeError(NEEDS_OAUTH)
            self.sign_in = CatalogueSignIn(
                gateway, settings, services.registry, services.issuer, services.limiter
            )

    async def start(self) -> None:
        if self.sign_in is not None:
            await self.sign_in.start()
            line = self.sign_in.demo_line(self.config.oauth.demo_users)
            if line:
                print(line, flush=True)

    def public_routes(self) -> list[BaseRoute]:
        config = self.config
        services = self.services
        if not config.catalogue.enabled:
            return []
        # Contracts are read once here; a bad contract stops start-up, not a request.
        viewer = ViewerPolicy(
            config.catalogue,
            AdminTokens.from_config(config),
            services.issuer,
            services.revocations,
        )
        views = CatalogueViews(
            build_catalogue(config), viewer, config.catalogue.title, services.dataflow, self.sign_in
        )
        routes: list[BaseRoute] = [
            Route("/catalogue", views.index, methods=["GET", "HEAD"]),
            Route("/catalogue/api/{name}", views.page, methods=["GET", "HEAD"]),
            Route("/catalogue/apis", views.list_json, methods=["GET", "HEAD"]),
            Route("/catalogue/apis/{name}", views.detail_json, methods=["GET", "HEAD"]),
            Route(
                "/catalogue/apis/{name}/openapi.json", views.contract_json, methods=["GET", "HEAD"]
            ),
            Route(
                "/catalogue/apis/{name}/openapi.yaml", views.contract_yaml, methods=["GET", "HEAD"]
            ),
            Mount("/catalogue/static", StaticFiles(directory=OWN_ASSETS), name="catalogue-static"),
            Mount(
                "/catalogue/swagger-ui", StaticFiles(directory=SWAGGER_ASSETS), name="swagger-ui"
            ),
        ]
        if self.sign_in is None:
            return routes
        sign_in = self.sign_in
        assert services.registry is not None  # checked with the sign-in above
        service = SelfService(config, sign_in, views.render, services.registry, services.limiter)

        def guarded(endpoint: Endpoint) -> Endpoint:
            async def run(request: Request) -> Answer:
                try:
                    return await endpoint(request)
                except Refused as error:
                    return views.refusal(request, error)

            return run

        return [
            Route(SIGN_IN_PATH, guarded(sign_in.sign_in), methods=["GET"]),
            Route(CALLBACK_PATH, guarded(sign_in.callback), methods=["GET"]),
            Route(SIGN_OUT_PATH, guarded(sign_in.sign_out), methods=["POST"]),
            Route("/catalogue/keys", guarded(service.keys), methods=["GET", "HEAD"]),
            Route("/catalogue/keys", guarded(service.create), methods=["POST"]),
            Route("/catalogue/keys/{key_id}/rotate", guarded(service.rotate), methods=["POST"]),
            Route("/catalogue/keys/{key_id}/revoke", guarded(service.revoke), methods=["POST"]),
            *routes,
        ]
