"""The admin listener's app: admin API and /metrics. Never mounted on the public listener."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from gateway.admin.audit import AuditTrail, audit_route
from gateway.admin.tokens import AdminAuthentication, AdminTokens
from gateway.problem import ProblemResponse

if TYPE_CHECKING:
    from gateway.app import Gateway


def create_admin_app(gateway: Gateway) -> AdminAuthentication:
    """The admin listener's app: the audit trail and every component's admin routes."""
    registry = gateway.services.registry
    routes: list[BaseRoute] = [audit_route(registry, gateway.config.admin_token)]
    for component in gateway.components:
        routes.extend(component.admin_routes())
    app = Starlette(routes=routes, exception_handlers={HTTPException: _problem})
    recorded = AuditTrail(app, registry)
    return AdminAuthentication(recorded, AdminTokens.from_config(gateway.config))


# Starlette types an exception handler's answer as a Response; it serves any ASGI app.
async def _problem(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = (
        f"No admin endpoint at '{request.url.path}'." if exc.status_code == 404 else str(exc.detail)
    )
    headers = list((exc.headers or {}).items())  # e.g. Allow on 405
    return ProblemResponse(exc.status_code, detail, headers=headers)  # type: ignore[return-value]
