"""Admin routes of the response cache: `DELETE /admin/cache` (every API) and
`DELETE /admin/cache/{api}`, with `Authorization: Bearer <admin_token>`."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from gateway.admin.auth import require_admin
from gateway.cache.redis_store import StoreUnavailable
from gateway.cache.registry import CacheRegistry
from gateway.problem import Answer, ProblemResponse

UNKNOWN_API = "API '{api}' has no response cache."
PURGE_FAILED = "The shared cache (Redis) is unavailable; nothing was purged, try again."


def cache_routes(registry: CacheRegistry, token: str | None) -> list[BaseRoute]:
    async def purge_all(request: Request) -> Answer:
        try:
            return JSONResponse({"purged": await registry.purge()})
        except StoreUnavailable:
            return ProblemResponse(503, PURGE_FAILED)

    async def purge_api(request: Request) -> Answer:
        api = request.path_params["api"]
        if api not in registry.stores:
            return ProblemResponse(404, UNKNOWN_API.format(api=api))
        try:
            return JSONResponse({"api": api, "purged": await registry.purge(api)})
        except StoreUnavailable:
            return ProblemResponse(503, PURGE_FAILED)

    return [
        Route("/admin/cache", require_admin(token, purge_all), methods=["DELETE"]),
        Route("/admin/cache/{api}", require_admin(token, purge_api), methods=["DELETE"]),
    ]
