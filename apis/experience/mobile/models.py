"""The mobile contract (openapi/experience/mobile.yaml): its inputs as pydantic models,
and the app's small payloads mapped from what the process APIs below return."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from apis._shared.validation import JsonInt, QueryInt
from apis._shared.values import (
    CATEGORY_PATTERN,
    CURSOR_PATTERN,
    CUSTOMER_ID_PATTERN,
    PLAIN_TEXT_PATTERN,
    SKU_PATTERN,
)

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
    category: str | None = Field(None, pattern=CATEGORY_PATTERN)
    q: str | None = Field(None, min_length=1, max_length=100, pattern=PLAIN_TEXT_PATTERN)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sku: str = Field(pattern=SKU_PATTERN)
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
