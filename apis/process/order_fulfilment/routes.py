"""order-fulfilment handlers: browse stock (inventory), place orders (`saga`), read an
order back (orders) with its fulfilment state."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apis._shared.composition import (
    caller_of,
    create_tier_app,
    derived_key,
    idempotency_key,
    parse_params,
)
from apis._shared.problems import PROBLEM_JSON
from apis._shared.service_client import WithServiceClient, service_client
from apis._shared.upstream import fetch
from apis._shared.validation import read_body
from apis.process.order_fulfilment.models import (
    OrderIdParam,
    PlaceOrder,
    ProductQuery,
    SkuParam,
    map_order,
    map_product,
)
from apis.process.order_fulfilment.saga import INVENTORY, ORDERS, place, sweep_later
from apis.process.order_fulfilment.store import API, ORDERED, SagaStore

NO_PRODUCT = "There is no product with SKU '{sku}'."
NO_ORDER = "There is no order with id '{id}'."


async def list_products(request: Request) -> JSONResponse:
    query = parse_params(ProductQuery, request)
    page = await fetch(
        request, f"{INVENTORY}/products", service="inventory", params=query.model_dump()
    )
    return JSONResponse(
        {"items": [map_product(p) for p in page["items"]], "next_cursor": page["next_cursor"]}
    )


async def get_product(request: Request) -> JSONResponse:
    sku = parse_params(SkuParam, request).sku
    product = await fetch(
        request,
        f"{INVENTORY}/products/{sku}",
        service="inventory",
        not_found=NO_PRODUCT.format(sku=sku),
    )
    return JSONResponse(map_product(product))


async def get_order(request: Request) -> JSONResponse:
    order_id = parse_params(OrderIdParam, request).order_id
    order = await fetch(
        request,
        f"{ORDERS}/orders/{order_id}",
        service="orders",
        not_found=NO_ORDER.format(id=order_id),
    )
    saga = await request.app.state.store.by_order(order_id)
    pending = saga is not None and saga.state == ORDERED
    return JSONResponse(map_order(order, "pending" if pending else "confirmed"))


async def place_order(request: Request) -> JSONResponse:
    key = derived_key("saga", caller_of(request), idempotency_key(request))  # per caller
    order = (await read_body(request, PlaceOrder))[0]
    status, body, replayed = await place(
        request.app.state.store,
        service_client(request.scope),
        request.headers,
        key,
        order.model_dump(),
    )
    headers = {"Idempotency-Replayed": "true"} if replayed else {}
    media = PROBLEM_JSON if status >= 400 else "application/json"
    return JSONResponse(body, status_code=status, headers=headers, media_type=media)


ROUTES = [
    Route("/products", list_products, methods=["GET"]),
    Route("/products/{sku}", get_product, methods=["GET"]),
    Route("/orders", place_order, methods=["POST"]),
    Route("/orders/{order_id}", get_order, methods=["GET"]),
]


def create_app(
    env: dict[str, str] | None = None, database_url: str | None = None
) -> WithServiceClient:
    store = SagaStore(database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        app.state.store = store
        try:
            yield
        finally:
            await store.close()

    return create_tier_app(
        API,
        ROUTES,
        lifespan=lifespan,
        env=env,
        on_started=lambda client: sweep_later(store, client),
    )
