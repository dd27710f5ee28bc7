"""mobile (experience): compact payloads for the shop app.

Calls process APIs only: customer-360 for the dashboard, order-fulfilment for browsing
and placing orders. Every payload is mapped here into the app's own small shapes.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apis._shared.composition import (
    Problem,
    caller_of,
    create_tier_app,
    derived_key,
    idempotency_key,
    parse_params,
    passthrough_problem,
    replayed_header,
)
from apis._shared.pagination import CURSOR_PATTERN
from apis._shared.service_client import (
    ServiceNotFound,
    ServiceRejected,
    WithServiceClient,
    service_client,
)
from apis._shared.validation import JsonInt, QueryInt, read_body
from apis._shared.values import CUSTOMER_ID_PATTERN

API = "mobile"
CUSTOMER_360 = "/process/customer-360/v1"
FULFILMENT = "/process/order-fulfilment/v1"
NO_CUSTOMER = "There is no customer with id '{id}'."
PART_NOTICES = {
    "balance": "Your credit information is temporarily unavailable.",
    "recent_orders": "Your recent orders are temporarily unavailable.",
}


class CustomerParam(BaseModel):
    model_config = ConfigDict(extra="ignore")
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)


class BrowseQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: QueryInt = Field(20, ge=1, le=50)
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN)
    category: str | None = Field(None, pattern=r"^(tools|garden|kitchen|lighting|outdoor)$")
    q: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sku: str = Field(pattern=r"^SKU-[0-9]{4}$")
    qty: JsonInt = Field(ge=1, le=99)


class NewOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)
    items: list[Item] = Field(min_length=1, max_length=20)


# -- mapping at the tier boundary ----------------------------------------------------


def to_dashboard(view: dict[str, Any]) -> dict[str, Any]:
    customer, balance = view["customer"], view["balance"]
    return {
        "customer_id": customer["id"],
        "name": customer["name"],
        "segment": customer["segment"],
        "credit": None
        if balance is None
        else {"available": balance["available_credit"], "currency": balance["currency"]},
        "recent_orders": None
        if view["recent_orders"] is None
        else [
            {
                "id": o["order_id"],
                "status": o["status"],
                "total": o["total"],
                "currency": o["currency"],
                "date": o["placed_at"][:10],
                "items": o["item_count"],
            }
            for o in view["recent_orders"]
        ],
        "notices": [
            PART_NOTICES.get(m["part"], "Some information is unavailable.") for m in view["missing"]
        ],
    }


def to_tile(product: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": product["sku"],
        "name": product["name"],
        "price": product["unit_price"],
        "currency": product["currency"],
        "in_stock": product["in_stock"],
    }


def to_receipt(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": order["order_id"],
        "status": order["status"],
        "total": order["total"],
        "currency": order["currency"],
        "items": sum(line["quantity"] for line in order["lines"]),
        "confirmed": order["fulfilment"] == "confirmed",
    }


# -- handlers ------------------------------------------------------------------------


async def dashboard(request: Request) -> JSONResponse:
    cid = parse_params(CustomerParam, request).customer_id
    try:
        view = await service_client(request.scope).get_json(
            f"{CUSTOMER_360}/customers/{cid}", service="customer-360", incoming=request.headers
        )
    except ServiceNotFound:
        raise Problem(404, NO_CUSTOMER.format(id=cid)) from None
    return JSONResponse(to_dashboard(view))


async def browse(request: Request) -> JSONResponse:
    query = parse_params(BrowseQuery, request)
    page = await service_client(request.scope).get_json(
        f"{FULFILMENT}/products",
        service="order-fulfilment",
        incoming=request.headers,
        params=query.model_dump(),
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
    try:
        response = await service_client(request.scope).request(
            "POST",
            f"{FULFILMENT}/orders",
            service="order-fulfilment",
            incoming=request.headers,
            json=body,
            headers={"Idempotency-Key": derived_key("mobile", caller_of(request), key)},
        )
    except ServiceRejected as exc:
        raise passthrough_problem(exc) from None
    return JSONResponse(
        to_receipt(response.json()),
        status_code=response.status_code,
        headers=replayed_header(response),
    )


def create_app(env: dict[str, str] | None = None) -> WithServiceClient:
    return create_tier_app(
        API,
        [
            Route("/customers/{customer_id}/dashboard", dashboard, methods=["GET"]),
            Route("/products", browse, methods=["GET"]),
            Route("/orders", place_order, methods=["POST"]),
        ],
        env=env,
    )


app = create_app()
