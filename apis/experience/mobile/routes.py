"""mobile handlers: compact payloads for the shop app.

Calls process APIs only: customer-360 for the dashboard, order-fulfilment for browsing
and placing orders. Every payload is mapped (`models`) into the app's own small shapes.
"""

from __future__ import annotations

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
from apis._shared.service_client import WithServiceClient
from apis._shared.upstream import fetch, post_and_relay
from apis._shared.validation import read_body
from apis.experience.mobile.models import (
    BrowseQuery,
    CustomerParam,
    NewOrder,
    to_dashboard,
    to_receipt,
    to_tile,
)

API = "mobile"
CUSTOMER_360 = "/process/customer-360/v1"
FULFILMENT = "/process/order-fulfilment/v1"
NO_CUSTOMER = "There is no customer with id '{id}'."


async def dashboard(request: Request) -> JSONResponse:
    cid = parse_params(CustomerParam, request).customer_id
    view = await fetch(
        request,
        f"{CUSTOMER_360}/customers/{cid}",
        service="customer-360",
        not_found=NO_CUSTOMER.format(id=cid),
    )
    return JSONResponse(to_dashboard(view))


async def browse(request: Request) -> JSONResponse:
    query = parse_params(BrowseQuery, request)
    page = await fetch(
        request, f"{FULFILMENT}/products", service="order-fulfilment", params=query.model_dump()
    )
    return JSONResponse(
        {"products": [to_tile(p) for p in page["items"]], "next": page["next_cursor"]}
    )


async def place_order(request: Request) -> JSONResponse:
    key = idempotency_key(request)
    order = (await read_body(request, NewOrder))[0]
    body = {
        "customer_id": order.customer_id,
        "lines": [{"sku": i.sku, "quantity": i.qty} for i in order.items],
    }
    return await post_and_relay(
        request,
        f"{FULFILMENT}/orders",
        service="order-fulfilment",
        json=body,
        idempotency_key=derived_key("mobile", caller_of(request), key),
        mapper=to_receipt,
    )


ROUTES = [
    Route("/customers/{customer_id}/dashboard", dashboard, methods=["GET"]),
    Route("/products", browse, methods=["GET"]),
    Route("/orders", place_order, methods=["POST"]),
]


def create_app(env: dict[str, str] | None = None) -> WithServiceClient:
    return create_tier_app(API, ROUTES, env=env)
