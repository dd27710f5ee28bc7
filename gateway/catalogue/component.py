"""The catalogue as a gateway component: its routes, built from config at start-up."""

from __future__ import annotations

from pathlib import Path

import swagger_ui
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from gateway.admin.tokens import AdminTokens
from gateway.catalogue.model import build_catalogue
from gateway.catalogue.viewer import ViewerPolicy
from gateway.catalogue.views import CatalogueViews
from gateway.components import Component

SWAGGER_ASSETS = Path(swagger_ui.__file__).parent / "static"
OWN_ASSETS = Path(__file__).parent / "static"


class CatalogueComponent(Component):
    name = "catalogue"

    def public_routes(self) -> list[BaseRoute]:
        config = self.gateway.config
        if not config.catalogue.enabled:
            return []
        # Contracts are read once here; a bad contract stops start-up, not a request.
        views = CatalogueViews(
            build_catalogue(config),
            ViewerPolicy(config.catalogue, AdminTokens.from_config(config), self.gateway.services),
            config.catalogue.title,
            self.gateway.services,
        )
        return [
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
