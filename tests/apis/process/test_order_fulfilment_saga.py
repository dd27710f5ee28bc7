"""The order-fulfilment saga with each step failing, against real system APIs.

Customers, orders and inventory run as separate uvicorn servers behind a gateway on
its own socket; order-fulfilment calls them through that gateway. A step fails by
stopping its server, or by a fault injected in front of the real inventory/orders app.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from apis._shared.service_client import ServiceClient
from apis.process import order_fulfilment
from apis.process.order_fulfilment import saga as fulfilment
from apis.process.order_fulfilment.store import COMPLETED, FAILED, RESERVED, SagaStore
from apis.system.customers import create_app as customers_app
from apis.system.inventory import create_app as inventory_app
from apis.system.orders import create_app as orders_app
from gateway.stack import build_gateway
from tests.apis.system.conftest import Backend
from tests.support.estate import auth_headers, estate_config, unique_key
from tests.support.faults import FaultInjector
from tests.support.servers import UvicornThread, serve_asgi

INVENTORY = "/system/inventory/v1"
SERVICE_TIMEOUT = 2.0


@dataclass
class Stack:
    fulfilment: str  # order-fulfilment's own URL
    gateway: str
    inventory_faults: FaultInjector
    orders_faults: FaultInjector
    orders_server: UvicornThread
    db_url: str

    def available(self, sku: str) -> int:
        r = httpx.get(
            f"{self.gateway}{INVENTORY}/products/{sku}",
            headers=auth_headers("inventory"),
            timeout=10,
        )
        r.raise_for_status()
        return int(r.json()["available"])

    def place(self, key: str, lines: list[dict], customer: str = "cus_0001") -> httpx.Response:
        return httpx.post(
            f"{self.fulfilment}/orders",
            json={"customer_id": customer, "lines": lines},
            headers={"Idempotency-Key": key, **auth_headers("order-fulfilment")},
            timeout=30,
        )


@pytest.fixture
def backend_kind() -> str:
    return "sqlite"  # tests parametrize this to run on PostgreSQL too


@pytest.fixture
def stack(tmp_path: Path, backend_kind: str) -> Iterator[Stack]:
    backend = Backend(backend_kind, tmp_path)
    try:
        yield from _stack(tmp_path, backend)
    finally:
        backend.drop_all()


def _stack(tmp_path: Path, backend: Backend) -> Iterator[Stack]:
    inventory = FaultInjector(inventory_app(backend.url_for("inventory")))
    orders = FaultInjector(orders_app(backend.url_for("orders")))
    with (
        serve_asgi(customers_app(backend.url_for("customers"))) as crm,
        serve_asgi(inventory) as wms,
    ):
        erp = UvicornThread(orders).start()
        targets = {"customers": [crm.url], "orders": [erp.url], "inventory": [wms.url]}
        config = estate_config(tmp_path, targets, only=["customers", "orders", "inventory"])
        config = config.model_copy(
            update={
                "apis": [
                    api.model_copy(
                        update={"upstream": api.upstream.model_copy(update={"retries": 0})}
                    )
                    for api in config.apis
                ]
            }
        )
        with serve_asgi(build_gateway(config)) as gateway:
            db_url = backend.url_for("fulfilment")
            env = {
                "TIERGATE_GATEWAY_URL": gateway.url,
                "TIERGATE_SERVICE_TIMEOUT": str(SERVICE_TIMEOUT),
            }
            app = order_fulfilment.create_app(env=env, database_url=db_url)
            with serve_asgi(app) as ofu:
                yield Stack(ofu.url, gateway.url, inventory, orders, erp, db_url)
        if erp.thread.is_alive():
            erp.stop()


@pytest.mark.parametrize("backend_kind", ["sqlite", "postgresql"])
def test_order_is_reserved_created_and_committed_once_even_when_replayed(stack: Stack) -> None:
    before = stack.available("SKU-0003")
    key = unique_key()
    first = stack.place(key, [{"sku": "SKU-0003", "quantity": 2}])
    assert first.status_code == 201, first.text
    order = first.json()
    assert order["fulfilment"] == "confirmed" and order["customer_id"] == "cus_0001"
    assert order["lines"][0]["quantity"] == 2
    assert stack.available("SKU-0003") == before - 2

    again = stack.place(key, [{"sku": "SKU-0003", "quantity": 2}])
    assert again.status_code == 201
    assert again.headers["idempotency-replayed"] == "true"
    assert again.json() == order
    assert stack.available("SKU-0003") == before - 2  # never reserved twice

    other_body = stack.place(key, [{"sku": "SKU-0003", "quantity": 1}])
    assert other_body.status_code == 422
    assert "different request body" in other_body.json()["detail"]

    shown = httpx.get(
        f"{stack.fulfilment}/orders/{order['order_id']}",
        headers=auth_headers("order-fulfilment"),
        timeout=10,
    ).json()
    assert shown == order


def test_reserve_refused_for_lack_of_stock_holds_nothing(stack: Stack) -> None:
    before = stack.available("SKU-0004")
    response = stack.place(unique_key(), [{"sku": "SKU-0004", "quantity": before + 1}])
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert "Not enough stock" in response.json()["detail"]
    assert stack.available("SKU-0004") == before


def test_unknown_product_is_refused_before_anything_is_reserved(stack: Stack) -> None:
    before = stack.available("SKU-0005")
    response = stack.place(
        unique_key(), [{"sku": "SKU-0005", "quantity": 1}, {"sku": "SKU-9999", "quantity": 1}]
    )
    assert response.status_code == 404  # what it refers to does not exist, like a customer
    assert "SKU-9999" in response.json()["detail"]
    assert stack.available("SKU-0005") == before


@pytest.mark.parametrize("backend_kind", ["sqlite", "postgresql"])
def test_create_order_rejected_releases_the_reservation(stack: Stack) -> None:
    before = stack.available("SKU-0006")
    stack.orders_faults.fail("POST", r"^/orders$", 422)
    response = stack.place(unique_key(), [{"sku": "SKU-0006", "quantity": 3}])
    assert response.status_code == 422
    assert "reserved for it was released" in response.json()["detail"]
    assert stack.orders_faults.hits == 1
    assert stack.available("SKU-0006") == before


def test_orders_system_down_releases_and_a_retry_never_leaks_stock(stack: Stack) -> None:
    before = stack.available("SKU-0007")
    stack.orders_server.stop()
    key = unique_key()
    for _ in range(2):  # the retry with the same key reserves afresh and releases again
        response = stack.place(key, [{"sku": "SKU-0007", "quantity": 1}])
        assert response.status_code == 503, response.text
        assert "nothing is held" in response.json()["detail"]
        assert stack.available("SKU-0007") == before


def test_commit_failure_reports_the_order_and_a_retry_completes_it(stack: Stack) -> None:
    before = stack.available("SKU-0008")
    stack.inventory_faults.fail("POST", r"^/reservations/[^/]+/commit$", 503)
    key = unique_key()
    pending = stack.place(key, [{"sku": "SKU-0008", "quantity": 1}])
    assert pending.status_code == 202, pending.text
    order = pending.json()
    assert order["fulfilment"] == "pending"
    shown = httpx.get(
        f"{stack.fulfilment}/orders/{order['order_id']}",
        headers=auth_headers("order-fulfilment"),
        timeout=10,
    ).json()
    assert shown["fulfilment"] == "pending"
    assert stack.available("SKU-0008") == before - 1  # held, not lost

    stack.inventory_faults.clear()
    done = stack.place(key, [{"sku": "SKU-0008", "quantity": 1}])
    assert done.status_code == 201
    assert done.json() == {**order, "fulfilment": "confirmed"}
    assert stack.available("SKU-0008") == before - 1


def test_create_order_unanswered_keeps_the_stock_and_a_retry_orders_once(stack: Stack) -> None:
    before = stack.available("SKU-0013")
    stack.orders_faults.delay("POST", r"^/orders$", SERVICE_TIMEOUT + 0.5)
    key = unique_key()
    doubt = stack.place(key, [{"sku": "SKU-0013", "quantity": 1}])
    assert doubt.status_code == 503
    assert "may be in progress" in doubt.json()["detail"]
    assert stack.available("SKU-0013") == before - 1  # held: the order may exist
    stack.orders_faults.clear()
    time.sleep(0.8)  # the slow create finishes in the orders system meanwhile
    done = stack.place(key, [{"sku": "SKU-0013", "quantity": 1}])
    assert done.status_code == 201, done.text
    orders = httpx.get(
        f"{stack.gateway}/system/orders/v1/orders",
        params={"customer_id": "cus_0001", "limit": 100},
        headers=auth_headers("orders"),
        timeout=10,
    ).json()["items"]
    made = [o for o in orders if not re.fullmatch(r"ord_\d{6}", o["id"])]  # not seeded
    assert [o["id"] for o in made] == [done.json()["order_id"]]  # one order, not two
    assert stack.available("SKU-0013") == before - 1


async def _interrupted_saga(stack: Stack, store: SagaStore, client: ServiceClient, sku: str):
    saga = await store.create(
        unique_key(), {"customer_id": "cus_0001", "lines": [{"sku": sku, "quantity": 2}]}
    )
    flow = fulfilment.Fulfilment(store, client)
    assert await flow.price(saga) is None
    assert await flow.reserve(saga) is None  # ... and here the process "crashes"
    assert saga.state == RESERVED
    return saga


@pytest.mark.parametrize("backend_kind", ["sqlite", "postgresql"])
async def test_sweep_finishes_or_releases_sagas_that_died_after_reserving(
    stack: Stack,
) -> None:
    store = SagaStore(stack.db_url)
    await store.open()
    client = ServiceClient.from_state(
        "order-fulfilment", {}, env={"TIERGATE_GATEWAY_URL": stack.gateway}
    )
    try:
        before = stack.available("SKU-0010")
        saga = await _interrupted_saga(stack, store, client, "SKU-0010")
        assert stack.available("SKU-0010") == before - 2
        assert await fulfilment.sweep(store, client, older_than=60) == 0  # too fresh
        time.sleep(0.05)
        assert await fulfilment.sweep(store, client, older_than=0.01) == 1
        finished = await store.get(saga.key)
        assert finished is not None and finished.state == COMPLETED
        assert finished.response_body and finished.response_body["fulfilment"] == "confirmed"
        assert stack.available("SKU-0010") == before - 2  # ordered, committed

        before = stack.available("SKU-0015")
        refused = await _interrupted_saga(stack, store, client, "SKU-0015")
        stack.orders_faults.fail("POST", r"^/orders$", 422)
        time.sleep(0.05)
        assert await fulfilment.sweep(store, client, older_than=0.01) == 1
        swept = await store.get(refused.key)
        assert swept is not None and swept.state == FAILED and swept.response_status == 422
        assert stack.available("SKU-0015") == before  # released
    finally:
        await client.aclose()
        await store.close()
