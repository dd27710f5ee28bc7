"""Value formats every API shares: customer ids, money as 2-decimal strings, UTC timestamps."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated

from pydantic import StringConstraints

CURRENCY = "EUR"
MONEY_PATTERN = r"^-?[0-9]{1,13}\.[0-9]{2}$"
UNIT_PRICE_PATTERN = r"^[0-9]{1,7}\.[0-9]{2}$"
CUSTOMER_ID_PATTERN = r"^cus_[0-9a-z]{4,32}$"  # customer ids, in every tier

Money = Annotated[str, StringConstraints(pattern=MONEY_PATTERN)]
UnitPrice = Annotated[str, StringConstraints(pattern=UNIT_PRICE_PATTERN)]
CustomerId = Annotated[str, StringConstraints(pattern=CUSTOMER_ID_PATTERN)]


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
