"""The pydantic models and constants the APIs validate with match their contracts."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

from apis._shared.idempotency import KEY_PATTERN
from apis._shared.values import (
    CURSOR_PATTERN,
    CUSTOMER_ID_PATTERN,
    MONEY_PATTERN,
    ORDER_ID_PATTERN,
    RESERVATION_ID_PATTERN,
    SKU_PATTERN,
    UNIT_PRICE_PATTERN,
)
from apis.system.customers import models as customers
from apis.system.inventory import models as inventory
from apis.system.orders import models as orders

CONTRACTS = Path(__file__).resolve().parents[3] / "openapi" / "system"


def schemas(name: str) -> dict:
    return yaml.safe_load((CONTRACTS / f"{name}.yaml").read_text())["components"]["schemas"]


@pytest.mark.parametrize(
    ("name", "schema", "pattern"),
    [
        ("customers", "Email", customers.EMAIL_PATTERN),
        ("customers", "CustomerId", CUSTOMER_ID_PATTERN),
        ("customers", "Money", MONEY_PATTERN),
        ("customers", "Cursor", CURSOR_PATTERN),
        ("orders", "OrderId", ORDER_ID_PATTERN),
        ("orders", "UnitPrice", UNIT_PRICE_PATTERN),
        ("orders", "Money", MONEY_PATTERN),
        ("orders", "Cursor", CURSOR_PATTERN),
        ("inventory", "Sku", SKU_PATTERN),
        ("inventory", "ReservationId", RESERVATION_ID_PATTERN),
        ("inventory", "Money", MONEY_PATTERN),
        ("inventory", "Cursor", CURSOR_PATTERN),
    ],
)
def test_patterns_match(name: str, schema: str, pattern: str) -> None:
    assert schemas(name)[schema]["pattern"] == pattern


@pytest.mark.parametrize("name", ["customers", "orders", "inventory"])
def test_idempotency_key_pattern_matches(name: str) -> None:
    document = yaml.safe_load((CONTRACTS / f"{name}.yaml").read_text())
    declared = document["components"]["parameters"]["IdempotencyKey"]["schema"]
    assert declared["pattern"] == f"^{KEY_PATTERN.pattern.replace('{1,255}', '+')}$"
    assert (declared["minLength"], declared["maxLength"]) == (1, 255)


@pytest.mark.parametrize(
    ("name", "schema", "model"),
    [
        ("customers", "Customer", customers.Customer),
        ("customers", "CustomerCreate", customers.CustomerCreate),
        ("customers", "Balance", customers.Balance),
        ("orders", "Order", orders.Order),
        ("orders", "OrderLine", orders.OrderLine),
        ("orders", "OrderCreate", orders.OrderCreate),
        ("orders", "OrderLineCreate", orders.OrderLineCreate),
        ("inventory", "Product", inventory.Product),
        ("inventory", "Reservation", inventory.Reservation),
        ("inventory", "ReservationCreate", inventory.ReservationCreate),
        ("inventory", "ReservationLine", inventory.ReservationLine),
    ],
)
def test_models_have_the_contract_fields(name: str, schema: str, model: type[BaseModel]) -> None:
    declared = schemas(name)[schema]
    assert set(model.model_fields) == set(declared["properties"])
    required = {field for field, info in model.model_fields.items() if info.is_required()}
    if model.model_config.get("extra") == "forbid":  # a request body: same required fields
        assert required == set(declared["required"])
    else:  # a response: the API always sends what the contract requires
        assert required <= set(declared["required"])


@pytest.mark.parametrize(
    ("name", "schema", "literal"),
    [
        ("customers", "Segment", customers.Segment),
        ("orders", "OrderStatus", orders.OrderStatus),
        ("inventory", "Category", inventory.Category),
    ],
)
def test_enums_match(name: str, schema: str, literal: object) -> None:
    assert list(typing.get_args(literal)) == schemas(name)[schema]["enum"]
