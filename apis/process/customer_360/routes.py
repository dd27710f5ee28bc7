"""customer-360 handler: the three parts come from three system APIs, fetched
concurrently through the gateway. Without the customer there is no answer (404 / 503);
without orders or balance the answer is still 200 and `missing` says which part is
absent and why."""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apis._shared.composition import create_tier_app, parse_params
from apis._shared.service_client import ServiceError, WithServiceClient
from apis._shared.upstream import fetch
from apis.process.customer_360.models import Params, map_balance, map_customer, recent

API = "customer-360"
CUSTOMERS = "/system/customers/v1"
ORDERS = "/system/orders/v1"
NO_CUSTOMER = "There is no customer with id '{id}'."
# The orders system lists oldest first: read one full page and keep the newest.
ORDERS_SCANNED = 100


async def customer_view(request: Request) -> JSONResponse:
    params = parse_params(Params, request)
    cid = params.customer_id
    customer: Any
    orders: Any
    balance: Any
    customer, orders, balance = await asyncio.gather(
        fetch(
            request,
            f"{CUSTOMERS}/customers/{cid}",
            service="customers",
            not_found=NO_CUSTOMER.format(id=cid),
        ),
        fetch(
            request,
            f"{ORDERS}/orders",
            service="orders",
            params={"customer_id": cid, "limit": ORDERS_SCANNED},
        ),
        fetch(request, f"{CUSTOMERS}/customers/{cid}/balance", service="customers"),
        return_exceptions=True,
    )
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


ROUTES = [Route("/customers/{customer_id}", customer_view, methods=["GET"])]


def create_app(env: dict[str, str] | None = None) -> WithServiceClient:
    return create_tier_app(API, ROUTES, env=env)
