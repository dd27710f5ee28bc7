"""customer-360 (process): one customer with recent orders and credit position.

The three parts come from three system APIs, fetched concurrently through the
gateway. Without the customer there is no answer (404 / 503); without orders or
balance the answer is still 200 and `missing` says which part is absent and why.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apis._shared.composition import Problem, create_tier_app, parse_params
from apis._shared.service_client import (
    ServiceError,
    ServiceNotFound,
    WithServiceClient,
    service_client,
)
from apis._shared.validation import QueryInt
from apis._shared.values import CUSTOMER_ID_PATTERN

API = "customer-360"
CUSTOMERS = "/system/customers/v1"
ORDERS = "/system/orders/v1"
NO_CUSTOMER = "There is no customer with id '{id}'."
# The orders system lists oldest first: read one full page and keep the newest.
ORDERS_SCANNED = 100


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)
    recent_orders: QueryInt = Field(5, ge=1, le=20)


def map_customer(c: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": c["id"],
        "name": c["name"],
        "email": c["email"],
        "segment": c["segment"],
        "country": c["country"],
        "customer_since": c["created_at"],
    }


def map_balance(b: dict[str, Any]) -> dict[str, Any]:
    available = Decimal(b["credit_limit"]) - Decimal(b["balance"])
    return {
        "credit_limit": b["credit_limit"],
        "outstanding": b["balance"],
        "available_credit": f"{available:.2f}",
        "currency": b["currency"],
    }


def map_order(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": o["id"],
        "status": o["status"],
        "total": o["total"],
        "currency": o["currency"],
        "placed_at": o["created_at"],
        "item_count": sum(int(line["quantity"]) for line in o["lines"]),
    }


def recent(orders: list[dict[str, Any]], count: int) -> list[dict[str, Any]]:
    newest = sorted(orders, key=lambda o: o["created_at"], reverse=True)[:count]
    return [map_order(o) for o in newest]


async def customer_view(request: Request) -> JSONResponse:
    params = parse_params(Params, request)
    client = service_client(request.scope)
    headers = request.headers
    cid = params.customer_id
    customer: Any
    orders: Any
    balance: Any
    customer, orders, balance = await asyncio.gather(
        client.get_json(f"{CUSTOMERS}/customers/{cid}", service="customers", incoming=headers),
        client.get_json(
            f"{ORDERS}/orders",
            service="orders",
            incoming=headers,
            params={"customer_id": cid, "limit": ORDERS_SCANNED},
        ),
        client.get_json(
            f"{CUSTOMERS}/customers/{cid}/balance", service="customers", incoming=headers
        ),
        return_exceptions=True,
    )
    if isinstance(customer, ServiceNotFound):
        raise Problem(404, NO_CUSTOMER.format(id=cid))
    if isinstance(customer, BaseException):
        raise customer  # the customer is the one part we cannot answer without
    missing: list[dict[str, str]] = []
    body: dict[str, Any] = {"customer": map_customer(customer)}
    parts = (
        ("recent_orders", orders, lambda page: recent(page["items"], params.recent_orders)),
        ("balance", balance, map_balance),
    )
    for part, result, mapper in parts:
        if isinstance(result, ServiceError):
            missing.append({"part": part, "reason": str(result)})
            body[part] = None
        elif isinstance(result, BaseException):
            raise result
        else:
            body[part] = mapper(result)
    body["missing"] = missing
    return JSONResponse(body)


def create_app(env: dict[str, str] | None = None) -> WithServiceClient:
    routes = [Route("/customers/{customer_id}", customer_view, methods=["GET"])]
    return create_tier_app(API, routes, env=env)


app = create_app()
