"""customer-360 fetches its three parts concurrently, each within a deadline, and
answers with what it has when a part is slow."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from apis.process import customer_360
from apis.system.customers import create_app as customers_app
from apis.system.orders import create_app as orders_app
from gateway.stack import build_gateway
from tests.support.estate import auth_headers, estate_config
from tests.support.faults import FaultInjector
from tests.support.servers import serve_asgi

SLOW = 1.5


@dataclass
class Systems:
    gateway: str
    customers: FaultInjector
    orders: FaultInjector


@pytest.fixture
def systems(tmp_path: Path) -> Iterator[Systems]:
    crm = FaultInjector(customers_app(f"sqlite:///{tmp_path}/c.db"))
    erp = FaultInjector(orders_app(f"sqlite:///{tmp_path}/o.db"))
    with serve_asgi(crm) as crm_server, serve_asgi(erp) as erp_server:
        config = estate_config(
            tmp_path,
            {"customers": [crm_server.url], "orders": [erp_server.url]},
            only=["customers", "orders"],
        )
        with serve_asgi(build_gateway(config)) as gateway:
            yield Systems(gateway.url, crm, erp)


def view(systems: Systems, timeout: str) -> tuple[float, httpx.Response]:
    app = customer_360.create_app(
        env={"TIERGATE_GATEWAY_URL": systems.gateway, "TIERGATE_SERVICE_TIMEOUT": timeout}
    )
    with serve_asgi(app) as server:
        started = time.monotonic()
        response = httpx.get(
            f"{server.url}/customers/cus_0001", headers=auth_headers("customer-360"), timeout=30
        )
        return time.monotonic() - started, response


def test_parts_are_fetched_concurrently(systems: Systems) -> None:
    systems.orders.delay("GET", r"^/orders$", SLOW)
    systems.customers.delay("GET", r"/balance$", SLOW)
    elapsed, response = view(systems, timeout="10")
    assert response.status_code == 200
    assert response.json()["missing"] == []
    assert SLOW <= elapsed < 2 * SLOW - 0.2  # one on top of the other would take 3 s


def test_a_slow_part_is_missing_with_its_reason(systems: Systems) -> None:
    systems.orders.delay("GET", r"^/orders$", SLOW)
    elapsed, response = view(systems, timeout="0.5")
    assert response.status_code == 200
    body = response.json()
    assert body["recent_orders"] is None and body["balance"] is not None
    assert body["missing"] == [
        {"part": "recent_orders", "reason": "orders: no answer within 0.5 s"}
    ]
    assert elapsed < SLOW


def test_without_the_customer_there_is_no_answer(systems: Systems) -> None:
    systems.customers.fail("GET", r"^/customers/cus_0001$", 503)
    _, response = view(systems, timeout="5")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]  # says what happened, names no service behind the API
    assert detail == "A service this API depends on is unavailable; try again later."
