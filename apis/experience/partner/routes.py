"""partner handlers: B2B availability, price list, bulk ordering and order status.

Calls order-fulfilment only. A partner's orders belong to one customer account: the
gateway's verified `X-Consumer-ID` names it (directly as a customer id, or through
`TIERGATE_PARTNER_ACCOUNTS="consumer=cus_0001,..."`); without one (the gateway admits
that only for keys with the `partner:all-accounts` scope) the body's
`customer_id` is used.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections.abc import Mapping

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apis._shared.composition import (
    create_tier_app,
    derived_key,
    idempotency_key,
    parse_params,
)
from apis._shared.problems import Problem
from apis._shared.service_client import ServiceNotFound, WithServiceClient
from apis._shared.upstream import fetch, post_and_relay
from apis._shared.validation import read_body
from apis._shared.values import CUSTOMER_ID_PATTERN, ORDER_ID_PATTERN
from apis.experience.partner.models import (
    AvailabilityQuery,
    BulkOrder,
    OrderRef,
    PriceListQuery,
    stock_status,
    to_partner_order,
    to_price_list,
)

API = "partner"
FULFILMENT = "/process/order-fulfilment/v1"
CUSTOMER_RE = re.compile(CUSTOMER_ID_PATTERN)
NO_ORDER = "There is no order with reference '{id}' for this account."
NO_ACCOUNT = (
    "No customer account is linked to this partner; send `customer_id` in the "
    "body or ask for your API key to be linked to an account."
)
OTHER_ACCOUNT = "This partner may only order for its own account '{account}'."


class OrderRefConvertor(Convertor[str]):
    regex = ORDER_ID_PATTERN.strip("^$")

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("order_ref", OrderRefConvertor())


def linked_accounts(env: Mapping[str, str] | None = None) -> dict[str, str]:
    raw = (os.environ if env is None else env).get("TIERGATE_PARTNER_ACCOUNTS", "")
    pairs = (item.split("=", 1) for item in raw.split(",") if "=" in item)
    return {consumer.strip(): customer.strip() for consumer, customer in pairs}


def linked_account(request: Request) -> str | None:
    consumer = request.headers.get("x-consumer-id")
    if not consumer:
        return None
    if CUSTOMER_RE.match(consumer):
        return consumer
    return linked_accounts().get(consumer)


async def availability(request: Request) -> JSONResponse:
    query = parse_params(AvailabilityQuery, request, lists=("sku",))
    skus = list(dict.fromkeys(query.sku))
    results = await asyncio.gather(
        *(
            fetch(request, f"{FULFILMENT}/products/{sku}", service="order-fulfilment")
            for sku in skus
        ),
        return_exceptions=True,
    )
    entries = []
    for sku, result in zip(skus, results, strict=True):
        if isinstance(result, ServiceNotFound):
            entries.append({"sku": sku, "status": "unknown", "available_quantity": 0})
        elif isinstance(result, BaseException):
            raise result
        else:
            entries.append(
                {
                    "sku": sku,
                    "status": stock_status(result["available_quantity"]),
                    "available_quantity": result["available_quantity"],
                }
            )
    return JSONResponse({"availability": entries})


async def price_list(request: Request) -> JSONResponse:
    query = parse_params(PriceListQuery, request)
    page = await fetch(
        request, f"{FULFILMENT}/products", service="order-fulfilment", params=query.model_dump()
    )
    return JSONResponse(to_price_list(page))


async def bulk_order(request: Request) -> JSONResponse:
    key = idempotency_key(request)
    order = (await read_body(request, BulkOrder))[0]
    linked = linked_account(request)
    if linked and order.customer_id and order.customer_id != linked:
        raise Problem(403, OTHER_ACCOUNT.format(account=linked))
    account = linked or order.customer_id
    if account is None:
        raise Problem(422, NO_ACCOUNT)
    body = {
        "customer_id": account,
        "lines": [{"sku": li.sku, "quantity": li.quantity} for li in order.lines],
    }
    return await post_and_relay(
        request,
        f"{FULFILMENT}/orders",
        service="order-fulfilment",
        json=body,
        idempotency_key=derived_key("partner", account, key),
        mapper=to_partner_order,
    )


async def order_status(request: Request) -> JSONResponse:
    order_id = parse_params(OrderRef, request).order_id
    order = await fetch(
        request,
        f"{FULFILMENT}/orders/{order_id}",
        service="order-fulfilment",
        not_found=NO_ORDER.format(id=order_id),
    )
    linked = linked_account(request)
    if linked and order["customer_id"] != linked:
        raise Problem(404, NO_ORDER.format(id=order_id))
    return JSONResponse(to_partner_order(order))


ROUTES = [
    Route("/availability", availability, methods=["GET"]),
    Route("/price-list", price_list, methods=["GET"]),
    Route("/orders/bulk", bulk_order, methods=["POST"]),
    # `bulk` is no order id: GET /orders/bulk is a 405, not a bad id
    Route("/orders/{order_id:order_ref}", order_status, methods=["GET"]),
]


def create_app(env: dict[str, str] | None = None) -> WithServiceClient:
    return create_tier_app(API, ROUTES, env=env)
