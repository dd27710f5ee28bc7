"""The orders contract as pydantic models (openapi/system/orders.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from apis._shared.pagination import PageQuery
from apis._shared.values import CustomerId, Money, Quantity, ReservationId, Sku, UnitPrice

OrderStatus = Literal["placed", "shipped", "delivered", "cancelled"]


class OrderQuery(PageQuery):
    customer_id: CustomerId | None = None
    status: OrderStatus | None = None


class OrderLineCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku
    quantity: Quantity
    unit_price: UnitPrice


class OrderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    customer_id: CustomerId
    reservation_id: ReservationId | None = None
    lines: list[OrderLineCreate] = Field(min_length=1, max_length=50)


class OrderLine(BaseModel):
    sku: str
    quantity: int
    unit_price: UnitPrice
    line_total: Money


class Order(BaseModel):
    id: str
    customer_id: str
    status: OrderStatus
    lines: list[OrderLine]
    total: Money
    currency: Literal["EUR"] = "EUR"
    reservation_id: str | None
    created_at: str
