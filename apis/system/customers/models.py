"""The customers contract as pydantic models (openapi/system/customers.yaml)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StringConstraints

from apis._shared.pagination import PageQuery
from apis._shared.validation import Text
from apis._shared.values import Money

EMAIL_PATTERN = (
    r"^[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}$"
)

Email = Annotated[str, StringConstraints(max_length=254, pattern=EMAIL_PATTERN)]
Segment = Literal["retail", "business", "vip"]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


class CustomerQuery(PageQuery):
    email: Email | None = None
    segment: Segment | None = None
    q: Annotated[Text, StringConstraints(min_length=1, max_length=100)] | None = None


class CustomerCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    email: Email
    name: Annotated[Text, StringConstraints(min_length=1, max_length=120)]
    segment: Segment = "retail"
    country: Country = "DE"


class Customer(BaseModel):
    id: str
    email: str
    name: str
    segment: Segment
    country: str
    created_at: str


class Balance(BaseModel):
    customer_id: str
    credit_limit: Money
    balance: Money
    currency: Literal["EUR"] = "EUR"
