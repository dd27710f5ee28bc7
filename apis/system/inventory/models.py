"""The inventory contract as pydantic models (openapi/system/inventory.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from apis._shared.pagination import PageQuery
from apis._shared.validation import Text
from apis._shared.values import Category, Money, Quantity, Sku


class ProductQuery(PageQuery):
    category: Category | None = None
    q: Annotated[Text, StringConstraints(min_length=1, max_length=100)] | None = None


class Product(BaseModel):
    sku: str
    name: str
    category: Category
    price: Money
    currency: Literal["EUR"] = "EUR"
    available: int = Field(ge=0)


class ReservationLine(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sku: Sku
    quantity: Quantity


class ReservationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    lines: list[ReservationLine] = Field(min_length=1, max_length=50)

    def totals(self) -> list[tuple[str, int]]:
        """Quantities per SKU in SKU order (a fixed lock order: no deadlocks)."""
        merged: dict[str, int] = {}
        for line in self.lines:
            merged[line.sku] = merged.get(line.sku, 0) + line.quantity
        return sorted(merged.items())


class Reservation(BaseModel):
    id: str
    status: Literal["held", "released", "committed"]
    lines: list[ReservationLine]
    expires_at: str
    created_at: str
