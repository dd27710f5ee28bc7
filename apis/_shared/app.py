"""Assemble a tier API: routes, problem+json errors, database lifespan and seeding."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from apis._shared.db import Database, database_url
from apis._shared.idempotency import IDEMPOTENCY_TABLE, purge_expired
from apis._shared.problems import EXCEPTION_HANDLERS, ProblemGuard

Seed = Callable[[Database], Awaitable[None]]


def create_api(
    name: str,
    routes: Sequence[BaseRoute],
    metadata: MetaData,
    seed: Seed,
    db_url: str | None = None,
) -> Starlette:
    """A starlette app whose lifespan opens the API's database, creates and seeds it."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Any]]:
        db = Database(db_url or database_url(name), metadata)
        try:
            await db.create_schema()
            await seed(db)
            if IDEMPOTENCY_TABLE in metadata.tables:
                await purge_expired(db, metadata.tables[IDEMPOTENCY_TABLE])
            yield {"db": db}
        finally:
            await db.dispose()

    return tier_app(routes, lifespan)


def tier_app(
    routes: Sequence[BaseRoute],
    lifespan: Any = None,
    exception_handlers: Mapping[Any, Any] = EXCEPTION_HANDLERS,
) -> Starlette:
    """Every tier API's Starlette app: its routes, problem+json for every error."""
    return Starlette(
        routes=list(routes),
        lifespan=lifespan,
        exception_handlers=dict(exception_handlers),
        middleware=[Middleware(ProblemGuard)],
    )


Handler = Callable[[Request], Awaitable[Response]]


def resource(path: str, **handlers: Handler) -> Route:
    """One route per path, dispatching on the method, so a 405 lists every allowed one."""
    by_method = {method.upper(): handler for method, handler in handlers.items()}
    if "GET" in by_method:
        by_method.setdefault("HEAD", by_method["GET"])

    async def endpoint(request: Request) -> Response:
        return await by_method[request.method](request)

    return Route(path, endpoint, methods=list(by_method), name=path)


def db_of(request: Request) -> Database:
    db: Database = request.state.db
    return db
