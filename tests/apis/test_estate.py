"""The demo estate (tiergate.yaml): all seven APIs answer real data through the gateway,
and the quickstart flow works: browse → partner order → the customer's dashboard."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.checks import run_checks
from gateway.loading import load_config
from tests.support.estate import ESTATE, auth_headers, serve_estate

# One request per API that must answer 200 with seed data, and what it must contain.
PROBES = {
    "customers": ("/customers/cus_0001", lambda b: b["id"] == "cus_0001"),
    "orders": ("/orders?customer_id=cus_0001", lambda b: len(b["items"]) >= 1),
    "inventory": ("/products/SKU-0003", lambda b: b["sku"] == "SKU-0003"),
    "customer-360": (
        "/customers/cus_0001",
        lambda b: b["customer"]["id"] == "cus_0001" and b["missing"] == [] and b["recent_orders"],
    ),
    "order-fulfilment": ("/products?limit=3", lambda b: len(b["items"]) == 3),
    "mobile": ("/customers/cus_0001/dashboard", lambda b: b["name"] and b["credit"]),
    "partner": ("/price-list?limit=2", lambda b: len(b["entries"]) == 2),
}


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, object]]:
    with serve_estate(tmp_path_factory.mktemp("estate")) as served:
        yield served


def test_the_estate_config_loads_and_passes_check() -> None:
    config = load_config(ESTATE, env={})
    assert [a.name for a in config.apis] == list(PROBES)
    assert run_checks(config) == []


@pytest.mark.parametrize("name", list(PROBES))
def test_each_api_answers_real_data_through_the_gateway(estate, name: str) -> None:
    url, config = estate
    path, expect = PROBES[name]
    response = httpx.get(url + config.api(name).path + path, headers=auth_headers(name), timeout=30)
    assert response.status_code == 200, response.text
    assert expect(response.json())


def test_quickstart_flow_partner_order_shows_in_the_dashboard(estate) -> None:
    url, _ = estate
    partner, mobile = f"{url}/experience/partner/v1", f"{url}/experience/mobile/v1"
    tiles = httpx.get(
        f"{mobile}/products?category=tools", headers=auth_headers("mobile"), timeout=30
    ).json()["products"]
    sku = next(t["sku"] for t in tiles if t["in_stock"])
    before = httpx.get(
        f"{partner}/availability", params={"sku": sku}, headers=auth_headers("partner"), timeout=30
    ).json()
    placed = httpx.post(
        f"{partner}/orders/bulk",
        json={"customer_id": "cus_0002", "lines": [{"sku": sku, "quantity": 1}]},
        headers={"Idempotency-Key": str(uuid.uuid4()), **auth_headers("partner")},
        timeout=30,
    )
    assert placed.status_code == 201, placed.text
    reference = placed.json()["order_reference"]
    assert placed.json()["confirmed"] is True
    after = httpx.get(
        f"{partner}/availability", params={"sku": sku}, headers=auth_headers("partner"), timeout=30
    ).json()
    assert (
        after["availability"][0]["available_quantity"]
        == before["availability"][0]["available_quantity"] - 1
    )
    status = httpx.get(f"{partner}/orders/{reference}", headers=auth_headers("partner"), timeout=30)
    assert status.json()["order_reference"] == reference
    dashboard = httpx.get(
        f"{mobile}/customers/cus_0002/dashboard", headers=auth_headers("mobile"), timeout=30
    ).json()
    assert dashboard["recent_orders"][0]["id"] == reference
    assert "status" in dashboard["recent_orders"][0] and "customer_ref" not in str(dashboard)


def test_partner_consumer_identity_chooses_the_account(estate) -> None:
    url, _ = estate
    partner = f"{url}/experience/partner/v1"
    # The gateway owns X-Consumer-ID (a client's copy is dropped): the verified consumer
    # of the test's partner key is linked to no account, so a body without
    # customer_id has none.
    no_account = httpx.post(
        f"{partner}/orders/bulk",
        json={"lines": [{"sku": "SKU-0003", "quantity": 1}]},
        headers={
            "Idempotency-Key": str(uuid.uuid4()),
            "X-Consumer-ID": "cus_0003",
            **auth_headers("partner"),
        },
        timeout=30,
    )
    assert no_account.status_code == 422
    assert "No customer account is linked" in no_account.json()["detail"]


def test_customer_360_answers_partially_when_orders_is_down(tmp_path: Path) -> None:
    from apis.system.customers import create_app as customers_app
    from apis.system.orders import create_app as orders_app
    from tests.support.servers import UvicornThread, serve_asgi

    with serve_asgi(customers_app(f"sqlite:///{tmp_path}/c.db")) as crm:
        erp = UvicornThread(orders_app(f"sqlite:///{tmp_path}/o.db")).start()
        targets = {"customers": [crm.url], "orders": [erp.url]}
        with serve_estate(
            tmp_path, targets=targets, only=["customers", "orders", "customer-360"]
        ) as (url, _):
            c360 = f"{url}/process/customer-360/v1/customers"
            auth = auth_headers("customer-360")
            whole = httpx.get(f"{c360}/cus_0001", headers=auth, timeout=30).json()
            assert whole["missing"] == [] and whole["recent_orders"]
            erp.stop()
            part = httpx.get(f"{c360}/cus_0001", headers=auth, timeout=30)
            assert part.status_code == 200
            body = part.json()
            assert body["customer"] == whole["customer"]
            assert body["balance"] == whole["balance"]
            assert body["recent_orders"] is None
            assert [m["part"] for m in body["missing"]] == ["recent_orders"]
            assert body["missing"][0]["reason"].startswith("orders:")
            assert httpx.get(f"{c360}/cus_9999", headers=auth, timeout=30).status_code == 404
