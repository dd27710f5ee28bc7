"""The customer-360 contract (openapi/process/customer-360.yaml): its parameters as a
pydantic model, and its answer mapped from what the system APIs below return."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from apis._shared.validation import QueryInt
from apis._shared.values import CUSTOMER_ID_PATTERN


class Params(BaseModel):
    model_config = ConfigDict(extra="ignore")
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)
    recent_orders: QueryInt = Field(5, ge=1, le=20)


# -- mapping at the tier boundary ----------------------------------------------------


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
