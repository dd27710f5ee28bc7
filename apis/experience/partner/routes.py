"""partner (experience): B2B availability, price list, bulk ordering and order status.

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
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator
from pydantic_core import PydanticCustomError
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apis._shared.composition import (
    Problem,
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

API = "partner"
FULFILMENT = "/process/order-fulfilment/v1"
CUSTOMER_RE = re.compile(CUSTOMER_ID_PATTERN)
LOW_STOCK = 10
NO_ORDER = "There is no order with reference '{id}' for this account."
NO_ACCOUNT = (
    "No customer account is linked to this partner; send `customer_id` in the "
    "body or ask for your API key to be linked to an account."
)
OTHER_ACCOUNT = "This partner may only order for its own account '{account}'."


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sku: list[Annotated[str, StringConstraints(pattern=r"^SKU-[0-9]{4}$")]] = Field(
        min_length=1, max_length=50
    )


class PriceListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: QueryInt = Field(50, ge=1, le=100)
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN)
    category: str | None = Field(None, pattern=r"^(tools|garden|kitchen|lighting|outdoor)$")


class OrderRef(BaseModel):
    order_id: str = Field(pattern=r"^ord_[0-9a-z]{6,32}$")


class BulkLine(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sku: str = Field(pattern=r"^SKU-[0-9]{4}$")
    quantity: JsonInt = Field(ge=1, le=999)


class BulkOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    customer_id: str | None = Field(None, pattern=CUSTOMER_ID_PATTERN)
    lines: list[BulkLine] = Field(min_length=1, max_length=50)

    @field_validator("customer_id", mode="before")
    @classmethod
    def _absent_not_null(cls, value: Any) -> Any:
        """The contract's `customer_id` may be left out, but is a string when sent."""
        if value is None:
            raise PydanticCustomError("string_type", "Input should be a valid string")
        return value


class OrderRefConvertor(Convertor[str]):
    regex = "ord_[0-9a-z]{6,32}"

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


# -- mapping at the tier boundary ----------------------------------------------------


def stock_status(available: int) -> str:
    if available <= 0:
        return "out_of_stock"
    return "low_stock" if available < LOW_STOCK else "in_stock"


def to_partner_order(order: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_reference": order["order_id"],
        "account": order["customer_id"],
        "status": order["status"],
        "lines": [
            {
                "sku": li["sku"],
                "quantity": li["quantity"],
                "unit_price": li["unit_price"],
                "amount": li["line_total"],
            }
            for li in order["lines"]
        ],
        "order_total": order["total"],
        "currency": order["currency"],
        "placed_at": order["placed_at"],
        "confirmed": order["fulfilment"] == "confirmed",
    }


# -- handlers ------------------------------------------------------------------------


async def availability(request: Request) -> JSONResponse:
    query = parse_params(AvailabilityQuery, request, lists=("sku",))
    skus = list(dict.fromkeys(query.sku))
    client = service_client(request.scope)
    results = await asyncio.gather(
        *(
            client.get_json(
                f"{FULFILMENT}/products/{sku}", service="order-fulfilment", incoming=request.headers
            )
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
    page = await service_client(request.scope).get_json(
        f"{FULFILMENT}/products",
        service="order-fulfilment",
        incoming=request.headers,
        params=query.model_dump(),
    )
    return JSONResponse(
        {
            "currency": "EUR",
            "entries": [
                {
                    "sku": p["sku"],
                    "description": p["name"],
                    "category": p["category"],
                    "unit_price": p["unit_price"],
                }
                for p in page["items"]
            ],
            "next_cursor": page["next_cursor"],
        }
    )


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
    try:
        response = await service_client(request.scope).request(
            "POST",
            f"{FULFILMENT}/orders",
            service="order-fulfilment",
            incoming=request.headers,
            json=body,
            headers={"Idempotency-Key": derived_key("partner", account, key)},
        )
    except ServiceRejected as exc:
        raise passthrough_problem(exc) from None
    return JSONResponse(
        to_partner_order(response.json()),
        status_code=response.status_code,
        headers=replayed_header(response),
    )


async def order_status(request: Request) -> JSONResponse:
    order_id = parse_params(OrderRef, request).order_id
    try:
        order = await service_client(request.scope).get_json(
            f"{FULFILMENT}/orders/{order_id}", service="order-fulfilment", incoming=request.headers
        )
    except ServiceNotFound:
        raise Problem(404, NO_ORDER.format(id=order_id)) from None
    linked = linked_account(request)
    if linked and order["customer_id"] != linked:
        raise Problem(404, NO_ORDER.format(id=order_id))
    return JSONResponse(to_partner_order(order))


def create_app(env: dict[str, str] | None = None) -> WithServiceClient:
    return create_tier_app(
        API,
        [
            Route("/availability", availability, methods=["GET"]),
            Route("/price-list", price_list, methods=["GET"]),
            Route("/orders/bulk", bulk_order, methods=["POST"]),
            # `bulk` is no order id: GET /orders/bulk is a 405, not a bad id
            Route("/orders/{order_id:order_ref}", order_status, methods=["GET"]),
        ],
        env=env,
    )


app = create_app()
