"""The partner contract (openapi/experience/partner.yaml): its inputs as pydantic models,
and its B2B payloads mapped from what order-fulfilment returns."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from apis._shared.validation import QueryInt
from apis._shared.values import (
    CATEGORY_PATTERN,
    CURSOR_PATTERN,
    CUSTOMER_ID_PATTERN,
    ORDER_ID_PATTERN,
    SKU_PATTERN,
    Quantity,
    Sku,
)

LOW_STOCK = 10


class AvailabilityQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    sku: list[Sku] = Field(min_length=1, max_length=50)


class PriceListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: QueryInt = Field(50, ge=1, le=100)
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN)
    category: str | None = Field(None, pattern=CATEGORY_PATTERN)


class OrderRef(BaseModel):
    order_id: str = Field(pattern=ORDER_ID_PATTERN)


class BulkLine(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sku: str = Field(pattern=SKU_PATTERN)
    quantity: Quantity


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


def to_price_list(page: dict[str, Any]) -> dict[str, Any]:
    return {
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
