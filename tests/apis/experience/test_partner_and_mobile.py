"""Experience APIs: the partner's account comes from the gateway's X-Consumer-ID, and
the payloads are the channel's own shapes (no system column names)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from apis.experience import partner
from apis.experience.mobile.models import to_dashboard
from apis.experience.partner.routes import linked_accounts
from tests.support.estate import auth_headers, serve_estate, service_env
from tests.support.servers import serve_asgi


@pytest.fixture(scope="module")
def partner_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The partner API on its own socket, calling the estate's gateway (distributed mode)."""
    with (
        serve_estate(tmp_path_factory.mktemp("estate")) as (gateway_url, _),
        serve_asgi(
            partner.create_app(env={"TIERGATE_GATEWAY_URL": gateway_url, **service_env("partner")})
        ) as server,
    ):
        yield server.url


def order(url: str, body: dict, consumer: str | None = None) -> httpx.Response:
    headers = {"Idempotency-Key": str(uuid.uuid4()), **auth_headers("partner")}
    if consumer:
        headers["X-Consumer-ID"] = consumer  # what the gateway sets after verifying a key
    return httpx.post(f"{url}/orders/bulk", json=body, headers=headers, timeout=30)


def test_the_consumer_identity_is_the_account(partner_url: str) -> None:
    lines = [{"sku": "SKU-0004", "quantity": 1}]
    placed = order(partner_url, {"lines": lines}, consumer="cus_0004")
    assert placed.status_code == 201, placed.text
    assert placed.json()["account"] == "cus_0004"
    reference = placed.json()["order_reference"]
    mine = httpx.get(f"{partner_url}/orders/{reference}", headers={"X-Consumer-ID": "cus_0004"})
    assert mine.status_code == 200 and mine.json()["order_reference"] == reference
    theirs = httpx.get(f"{partner_url}/orders/{reference}", headers={"X-Consumer-ID": "cus_0005"})
    assert theirs.status_code == 404  # another partner's order does not exist for you


def test_an_explicit_other_account_is_forbidden(partner_url: str) -> None:
    refused = order(
        partner_url,
        {"customer_id": "cus_0006", "lines": [{"sku": "SKU-0004", "quantity": 1}]},
        consumer="cus_0004",
    )
    assert refused.status_code == 403
    assert "own account 'cus_0004'" in refused.json()["detail"]


def test_without_identity_the_body_names_the_account(partner_url: str) -> None:
    placed = order(
        partner_url, {"customer_id": "cus_0007", "lines": [{"sku": "SKU-0004", "quantity": 1}]}
    )
    assert placed.status_code == 201 and placed.json()["account"] == "cus_0007"
    body = placed.json()
    assert set(body) == {
        "order_reference",
        "account",
        "status",
        "lines",
        "order_total",
        "currency",
        "placed_at",
        "confirmed",
    }
    assert set(body["lines"][0]) == {"sku", "quantity", "unit_price", "amount"}


def test_linked_accounts_come_from_the_environment() -> None:
    env = {"TIERGATE_PARTNER_ACCOUNTS": "acme=cus_0001, globex = cus_0002,broken"}
    assert linked_accounts(env) == {"acme": "cus_0001", "globex": "cus_0002"}


def test_availability_and_price_list_are_partner_shapes(partner_url: str) -> None:
    availability = httpx.get(
        f"{partner_url}/availability",
        params=[("sku", "SKU-0009"), ("sku", "SKU-0011"), ("sku", "SKU-0009"), ("sku", "SKU-9998")],
    ).json()
    assert availability == {
        "availability": [
            {"sku": "SKU-0009", "status": "out_of_stock", "available_quantity": 0},
            {"sku": "SKU-0011", "status": "in_stock", "available_quantity": 10},
            {"sku": "SKU-9998", "status": "unknown", "available_quantity": 0},
        ]
    }
    prices = httpx.get(f"{partner_url}/price-list", params={"limit": 2}).json()
    assert prices["currency"] == "EUR" and len(prices["entries"]) == 2
    assert set(prices["entries"][0]) == {"sku", "description", "category", "unit_price"}
    bad = httpx.get(f"{partner_url}/availability", params={"sku": "nope"})
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"


def test_mobile_dashboard_turns_missing_parts_into_notices() -> None:
    view = {
        "customer": {
            "id": "cus_0001",
            "name": "Ben",
            "email": "b@example.com",
            "segment": "retail",
            "country": "DE",
            "customer_since": "2025-01-01T09:06:00Z",
        },
        "balance": None,
        "recent_orders": [],
        "missing": [{"part": "balance", "reason": "customers: no answer within 5 s"}],
    }
    assert to_dashboard(view) == {
        "customer_id": "cus_0001",
        "name": "Ben",
        "segment": "retail",
        "credit": None,
        "recent_orders": [],
        "notices": ["Your credit information is temporarily unavailable."],
    }


def test_a_bulk_order_refuses_an_explicit_null_account() -> None:
    """customer_id may be left out, but the contract says it is a string when sent
    (found by the direct contract run's coverage phase)."""
    from apis.experience.partner import create_app
    from tests.support.servers import serve_asgi

    app = create_app(env={"TIERGATE_GATEWAY_URL": "http://127.0.0.1:9"})  # never reached
    headers = {"Idempotency-Key": "k-1", "X-Consumer-ID": "cus_0001"}
    body = {"customer_id": None, "lines": [{"sku": "SKU-0007", "quantity": 2}]}
    with serve_asgi(app) as server:
        response = httpx.post(f"{server.url}/orders/bulk", json=body, headers=headers, timeout=10)
    assert response.status_code == 422, response.text
    assert response.json()["errors"] == [
        {"in": "body", "pointer": "/customer_id", "detail": "Input should be a valid string"}
    ]
