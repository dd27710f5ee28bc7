"""Value formats every API shares: ids, money as 2-decimal strings, cursors, UTC timestamps.

Each pattern is written here once and used by every tier (and matches the contracts'
schemas): an id that one tier accepts and the tier below refuses would turn a valid
request into a 502.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal, get_args

from pydantic import Field, StringConstraints

from apis._shared.validation import JsonInt

CURRENCY = "EUR"
MONEY_PATTERN = r"^-?[0-9]{1,13}\.[0-9]{2}$"
UNIT_PRICE_PATTERN = r"^[0-9]{1,7}\.[0-9]{2}$"
CUSTOMER_ID_PATTERN = r"^cus_[0-9a-z]{4,32}$"  # customer ids, in every tier
ORDER_ID_PATTERN = r"^ord_[0-9a-z]{6,32}$"
RESERVATION_ID_PATTERN = r"^res_[0-9a-z]{6,32}$"
SKU_PATTERN = r"^SKU-[0-9]{4}$"
# Opaque page positions: every tier accepts the same cursor (see apis/_shared/pagination.py).
CURSOR_PATTERN = r"^[0-9a-f]{1,15}$"
# One line of plain text in a query (no control characters).
PLAIN_TEXT_PATTERN = r"^[^\x00-\x1f\x7f]+$"

Category = Literal["tools", "garden", "kitchen", "lighting", "outdoor"]
CATEGORIES: tuple[str, ...] = get_args(Category)
CATEGORY_PATTERN = "^(" + "|".join(CATEGORIES) + ")$"

Money = Annotated[str, StringConstraints(pattern=MONEY_PATTERN)]
UnitPrice = Annotated[str, StringConstraints(pattern=UNIT_PRICE_PATTERN)]
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]
OrderId = Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
ReservationId = Annotated[str, StringConstraints(pattern=RESERVATION_ID_PATTERN)]
Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]
# Units of one product on an order line or a reservation, in every tier.
Quantity = Annotated[JsonInt, Field(ge=1, le=999)]


def money(cents: int) -> str:
    """Integer cents as the API's money string: 1250 → "12.50"."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}{whole}.{part:02d}"


def cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def timestamp(value: datetime) -> str:
    """ISO 8601 in UTC with a Z (SQLite hands datetimes back naive; they are UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
