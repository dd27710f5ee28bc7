"""Inventory API behaviour over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from apis.system.inventory import reservations
from tests.apis.system.conftest import assert_problem, walk


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def available(api: httpx.Client, sku: str) -> int:
    return int(api.get(f"/products/{sku}").json()["available"])


def stocked(api: httpx.Client, at_least: int, skip: int = 0) -> list[str]:
    """SKUs with at least `at_least` units free (tests use distinct ones)."""
    found = [p["sku"] for p in walk(api, "/products", limit=100) if p["available"] >= at_least]
    assert len(found) > skip
    return found[skip:]


def reserve(
    api: httpx.Client, *lines: tuple[str, int], headers: dict | None = None
) -> httpx.Response:
    body = {"lines": [{"sku": sku, "quantity": quantity} for sku, quantity in lines]}
    return api.post("/reservations", json=body, headers=headers or key())


def test_pagination_walks_the_catalogue_in_sku_order(inventory_api: httpx.Client) -> None:
    items = walk(inventory_api, "/products", limit=7)
    assert [item["sku"] for item in items] == [f"SKU-{n:04d}" for n in range(1, 101)]
    assert all(item["currency"] == "EUR" and item["available"] >= 0 for item in items)


def test_filters_by_category_and_text(inventory_api: httpx.Client) -> None:
    lighting = walk(inventory_api, "/products", category="lighting")
    assert lighting and all(item["category"] == "lighting" for item in lighting)
    lamps = walk(inventory_api, "/products", q="LAMP")
    assert lamps and all("lamp" in item["name"].lower() for item in lamps)
    assert_problem(inventory_api.get("/products", params={"category": "toys"}), 400)


def test_product_etag_changes_with_stock(inventory_api: httpx.Client) -> None:
    sku = stocked(inventory_api, 5, skip=0)[0]
    etag = inventory_api.get(f"/products/{sku}").headers["etag"]
    same = inventory_api.get(f"/products/{sku}", headers={"If-None-Match": etag})
    assert same.status_code == 304
    assert reserve(inventory_api, (sku, 1)).status_code == 201
    changed = inventory_api.get(f"/products/{sku}", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag


def test_a_short_line_holds_nothing(inventory_api: httpx.Client) -> None:
    plenty, scarce = stocked(inventory_api, 10, skip=1)[:2]
    before = available(inventory_api, plenty), available(inventory_api, scarce)
    refused = reserve(inventory_api, (plenty, 2), (scarce, before[1] + 1))
    assert f"{scarce}" in assert_problem(refused, 409)["detail"]
    assert (available(inventory_api, plenty), available(inventory_api, scarce)) == before
    unknown = reserve(inventory_api, (plenty, 1), ("SKU-9999", 1))
    assert "SKU-9999" in assert_problem(unknown, 409)["detail"]
    assert available(inventory_api, plenty) == before[0]


def test_concurrent_reservations_never_oversell(
    inventory_url: str, inventory_api: httpx.Client
) -> None:
    sku = stocked(inventory_api, 10, skip=3)[0]
    surplus = available(inventory_api, sku) - 10
    if surplus:
        assert reserve(inventory_api, (sku, surplus)).status_code == 201
    assert available(inventory_api, sku) == 10

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=inventory_url, timeout=30) as client:
            body = {"lines": [{"sku": sku, "quantity": 1}]}
            return await asyncio.gather(
                *(client.post("/reservations", json=body, headers=key()) for _ in range(20))
            )

    statuses = sorted(response.status_code for response in asyncio.run(run()))
    assert statuses == [201] * 10 + [409] * 10
    assert available(inventory_api, sku) == 0


def test_release_twice_returns_stock_once(inventory_api: httpx.Client) -> None:
    sku = stocked(inventory_api, 3, skip=5)[0]
    before = available(inventory_api, sku)
    held = reserve(inventory_api, (sku, 2), (sku, 1)).json()
    assert held["status"] == "held" and available(inventory_api, sku) == before - 3
    first = inventory_api.post(f"/reservations/{held['id']}/release")
    second = inventory_api.post(f"/reservations/{held['id']}/release")
    assert first.status_code == second.status_code == 200
    assert second.json()["status"] == "released"
    assert available(inventory_api, sku) == before
    refused = inventory_api.post(f"/reservations/{held['id']}/commit")
    assert "released" in assert_problem(refused, 409)["detail"]


def test_commit_keeps_the_stock_out(inventory_api: httpx.Client) -> None:
    sku = stocked(inventory_api, 2, skip=6)[0]
    before = available(inventory_api, sku)
    held = reserve(inventory_api, (sku, 2)).json()
    committed = inventory_api.post(f"/reservations/{held['id']}/commit")
    assert committed.json()["status"] == "committed"
    assert inventory_api.post(f"/reservations/{held['id']}/commit").status_code == 200
    assert_problem(inventory_api.post(f"/reservations/{held['id']}/release"), 409)
    assert available(inventory_api, sku) == before - 2
    assert inventory_api.get(f"/reservations/{held['id']}").json() == committed.json()


def test_retried_reservation_holds_once(inventory_url: str, inventory_api: httpx.Client) -> None:
    sku = stocked(inventory_api, 4, skip=7)[0]
    before = available(inventory_api, sku)
    headers = key()
    body = {"lines": [{"sku": sku, "quantity": 4}]}

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=inventory_url, timeout=30) as client:
            return await asyncio.gather(
                *(client.post("/reservations", json=body, headers=headers) for _ in range(6))
            )

    responses = asyncio.run(run())
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert available(inventory_api, sku) == before - 4


def test_expired_reservation_is_released(
    inventory_api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    sku = stocked(inventory_api, 1, skip=8)[0]
    before = available(inventory_api, sku)
    monkeypatch.setattr(reservations, "HOLD_FOR", timedelta(seconds=-1))
    held = reserve(inventory_api, (sku, 1)).json()
    assert available(inventory_api, sku) == before - 1
    refused = inventory_api.post(f"/reservations/{held['id']}/commit")
    assert "expired" in assert_problem(refused, 409)["detail"]
    assert available(inventory_api, sku) == before
    assert inventory_api.get(f"/reservations/{held['id']}").json()["status"] == "released"
    assert inventory_api.post(f"/reservations/{held['id']}/release").status_code == 200
    assert available(inventory_api, sku) == before


def test_problems_for_bad_reservations(inventory_api: httpx.Client) -> None:
    assert_problem(inventory_api.post("/reservations", json={"lines": []}, headers=key()), 422)
    bad = inventory_api.post(
        "/reservations", json={"lines": [{"sku": "sku-1", "quantity": 1}]}, headers=key()
    )
    assert assert_problem(bad, 422)["errors"][0]["pointer"] == "/lines/0/sku"
    assert_problem(
        inventory_api.post("/reservations", json={"lines": [{"sku": "SKU-0001", "quantity": 1}]}),
        400,
    )
    assert_problem(inventory_api.get("/reservations/res_000000"), 404)
    assert_problem(inventory_api.post("/reservations/res_000000/release"), 404)
    assert_problem(inventory_api.post("/reservations/res_000000/commit"), 404)
    assert_problem(inventory_api.get("/products/SKU-9999"), 404)
    malformed = assert_problem(inventory_api.get("/products/nope"), 400)  # not a SKU at all
    assert malformed["errors"] == [
        {"in": "path", "name": "sku", "detail": "does not have the expected format"}
    ]


@pytest.mark.parametrize(
    ("quantity", "status"),
    [
        (b"2.0", 201),
        (b"2e0", 201),  # integers as JSON Schema 2020-12 reads them
        (b"2.5", 422),
        (b"true", 422),
        (b'"2"', 422),  # a fraction, a boolean, a string
    ],
)
def test_quantity_is_a_json_schema_integer(
    inventory_api: httpx.Client, quantity: bytes, status: int
) -> None:
    body = b'{"lines": [{"sku": "SKU-0034", "quantity": ' + quantity + b"}]}"
    response = inventory_api.post(
        "/reservations", content=body, headers={**key(), "content-type": "application/json"}
    )
    assert response.status_code == status, response.text
    if status == 201:
        assert response.json()["lines"] == [{"sku": "SKU-0034", "quantity": 2}]
    else:
        assert response.json()["errors"][0]["pointer"] == "/lines/0/quantity"
