"""The order-fulfilment contract (openapi/process/order-fulfilment.yaml): its inputs as
pydantic models, and its answers mapped from what the system APIs below return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from apis._shared.validation import QueryInt
from apis._shared.values import (
    CATEGORY_PATTERN,
    CURSOR_PATTERN,
    CUSTOMER_ID_PATTERN,
    ORDER_ID_PATTERN,
    PLAIN_TEXT_PATTERN,
    SKU_PATTERN,
    Quantity,
)


class ProductQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: QueryInt = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN)
    category: str | None = Field(None, pattern=CATEGORY_PATTERN)
    q: str | None = Field(None, min_length=1, max_length=100, pattern=PLAIN_TEXT_PATTERN)


class SkuParam(BaseModel):
    sku: str = Field(pattern=SKU_PATTERN)


class OrderIdParam(BaseModel):
    order_id: str = Field(pattern=ORDER_ID_PATTERN)


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sku: str = Field(pattern=SKU_PATTERN)
    quantity: Quantity


class PlaceOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)
    lines: list[Line] = Field(min_length=1, max_length=50)


# -- mapping at the tier boundary ----------------------------------------------------


def map_product(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": p["sku"],
        "name": p["name"],
        "category": p["category"],
        "unit_price": p["price"],
        "currency": p["currency"],
        "available_quantity": p["available"],
        "in_stock": p["available"] > 0,
    }


def map_order(o: dict[str, Any], fulfilment: str = "confirmed") -> dict[str, Any]:
    return {
        "order_id": o["id"],
        "customer_id": o["customer_id"],
        "status": o["status"],
        "lines": [
            {
                "sku": li["sku"],
                "quantity": li["quantity"],
                "unit_price": li["unit_price"],
                "line_total": li["line_total"],
            }
            for li in o["lines"]
        ],
        "total": o["total"],
        "currency": o["currency"],
        "placed_at": o["created_at"],
        "fulfilment": fulfilment,
    }
