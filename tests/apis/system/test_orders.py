"""Orders API behaviour over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from decimal import Decimal

import httpx

from tests.apis.system.conftest import assert_problem, walk


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


ORDER = {
    "customer_id": "cus_0042",
    "reservation_id": "res_abcdef123456",
    "lines": [
        {"sku": "SKU-0001", "quantity": 3, "unit_price": "19.99"},
        {"sku": "SKU-0002", "quantity": 1, "unit_price": "0.05"},
    ],
}


def test_pagination_walks_every_order_once(orders_api: httpx.Client) -> None:
    items = walk(orders_api, "/orders", limit=100)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids)) >= 400
    assert ids[:400] == [f"ord_{n:06d}" for n in range(1, 401)]
    for order in items[:50]:
        total = sum(Decimal(line["line_total"]) for line in order["lines"])
        assert Decimal(order["total"]) == total


def test_filters_by_customer_and_status(orders_api: httpx.Client) -> None:
    everything = walk(orders_api, "/orders", limit=100)
    customer = everything[10]["customer_id"]
    mine = walk(orders_api, "/orders", customer_id=customer, limit=2)
    expected = [o["id"] for o in everything if o["customer_id"] == customer]
    assert [o["id"] for o in mine] == expected
    shipped = walk(orders_api, "/orders", status="shipped", limit=100)
    assert shipped and all(order["status"] == "shipped" for order in shipped)
    assert len(shipped) < len(everything)


def test_create_computes_totals_and_replays(orders_api: httpx.Client) -> None:
    headers = key()
    created = orders_api.post("/orders", json=ORDER, headers=headers)
    assert created.status_code == 201, created.text
    order = created.json()
    assert order["status"] == "placed"
    assert order["total"] == "60.02"
    assert [line["line_total"] for line in order["lines"]] == ["59.97", "0.05"]
    assert order["reservation_id"] == "res_abcdef123456"
    replay = orders_api.post("/orders", json=ORDER, headers=headers)
    assert replay.status_code == 201 and replay.json() == order
    mine = walk(orders_api, "/orders", customer_id="cus_0042")
    assert sum(o["id"] == order["id"] for o in mine) == 1
    other = orders_api.post("/orders", json={**ORDER, "customer_id": "cus_0043"}, headers=headers)
    assert_problem(other, 422)


def test_get_has_etag_that_changes_when_cancelled(orders_api: httpx.Client) -> None:
    order = orders_api.post("/orders", json=ORDER, headers=key()).json()
    first = orders_api.get(f"/orders/{order['id']}")
    etag = first.headers["etag"]
    assert (
        orders_api.get(f"/orders/{order['id']}", headers={"If-None-Match": etag}).status_code == 304
    )
    cancelled = orders_api.post(f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    after = orders_api.get(f"/orders/{order['id']}", headers={"If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    twice = orders_api.post(f"/orders/{order['id']}/cancel")
    assert twice.status_code == 200 and twice.json() == cancelled.json()


def test_shipped_orders_cannot_be_cancelled(orders_api: httpx.Client) -> None:
    shipped = orders_api.get("/orders", params={"status": "shipped", "limit": 1}).json()["items"][0]
    refused = orders_api.post(f"/orders/{shipped['id']}/cancel")
    assert "shipped" in assert_problem(refused, 409)["detail"]
    assert orders_api.get(f"/orders/{shipped['id']}").json()["status"] == "shipped"


def test_problems_for_bad_input_and_unknown_orders(orders_api: httpx.Client) -> None:
    assert_problem(orders_api.post("/orders", json=ORDER), 400)
    bad_line = {**ORDER, "lines": [{"sku": "SKU-0001", "quantity": 0, "unit_price": "1.5"}]}
    problem = assert_problem(orders_api.post("/orders", json=bad_line, headers=key()), 422)
    assert {e["pointer"] for e in problem["errors"]} == {"/lines/0/quantity", "/lines/0/unit_price"}
    no_lines = assert_problem(
        orders_api.post("/orders", json={**ORDER, "lines": []}, headers=key()), 422
    )
    assert no_lines["errors"][0]["pointer"] == "/lines"
    assert_problem(orders_api.post("/orders", json=[1, 2], headers=key()), 422)
    assert_problem(orders_api.get("/orders", params={"status": "lost"}), 400)
    assert_problem(orders_api.get("/orders", params={"customer_id": "x"}), 400)
    assert_problem(orders_api.get("/orders/ord_999999"), 404)
    assert_problem(orders_api.post("/orders/ord_999999/cancel"), 404)
    assert_problem(
        orders_api.post("/orders/ord_000001/cancel", headers={"Idempotency-Key": ""}), 400
    )
