"""Customers API behaviour over a real server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import httpx
import pytest

from apis._shared import idempotency
from tests.apis.system.conftest import assert_problem, walk


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


def new_customer(name: str = "Test Person") -> dict:
    return {"email": f"t-{uuid.uuid4().hex[:12]}@example.org", "name": name, "segment": "business"}


def test_pagination_walks_every_customer_once(customers_api: httpx.Client) -> None:
    items = walk(customers_api, "/customers", limit=37)
    ids = [item["id"] for item in items]
    assert len(ids) == len(set(ids))
    seeded = [i for i in ids if len(i) == 8]
    assert seeded[:300] == [f"cus_{n:04d}" for n in range(1, 301)]


def test_filters_by_segment_email_and_text(customers_api: httpx.Client) -> None:
    vip = walk(customers_api, "/customers", segment="vip", limit=100)
    assert vip and all(item["segment"] == "vip" for item in vip)
    everyone = walk(customers_api, "/customers", limit=100)
    assert len(vip) < len(everyone)
    target = everyone[41]
    found = customers_api.get("/customers", params={"email": target["email"].upper()}).json()
    assert [item["id"] for item in found["items"]] == [target["id"]]
    anna = walk(customers_api, "/customers", q="ANNA")
    assert anna and all("anna" in (i["name"] + i["email"]).lower() for i in anna)
    percent = walk(customers_api, "/customers", q="%", limit=100)
    assert all("%" in (i["name"] + i["email"]) for i in percent)  # a literal, not a wildcard


def test_get_has_etag_and_answers_304(customers_api: httpx.Client) -> None:
    first = customers_api.get("/customers/cus_0007")
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"')
    again = customers_api.get("/customers/cus_0007", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    weak = customers_api.get("/customers/cus_0007", headers={"If-None-Match": f'"x", W/{etag}'})
    assert weak.status_code == 304
    other = customers_api.get("/customers/cus_0008", headers={"If-None-Match": etag})
    assert other.status_code == 200 and other.headers["etag"] != etag


def test_create_replays_the_same_key_and_rejects_a_reused_key(customers_api: httpx.Client) -> None:
    body, headers = new_customer(), key()
    created = customers_api.post("/customers", json=body, headers=headers)
    assert created.status_code == 201, created.text
    assert created.json()["email"] == body["email"]
    assert "idempotency-replayed" not in created.headers
    replay = customers_api.post("/customers", json=body, headers=headers)
    assert replay.status_code == 201
    assert replay.json() == created.json()
    assert replay.headers["idempotency-replayed"] == "true"
    listed = customers_api.get("/customers", params={"email": body["email"]}).json()["items"]
    assert [item["id"] for item in listed] == [created.json()["id"]]
    reused = customers_api.post("/customers", json={**body, "name": "Other"}, headers=headers)
    assert "different request body" in assert_problem(reused, 422)["detail"]
    fetched = customers_api.get(f"/customers/{created.json()['id']}")
    assert fetched.json() == created.json()


def test_duplicate_email_is_a_conflict(customers_api: httpx.Client) -> None:
    body = new_customer()
    assert customers_api.post("/customers", json=body, headers=key()).status_code == 201
    shouted = {**body, "email": body["email"].upper()}
    conflict = customers_api.post("/customers", json=shouted, headers=key())
    assert "already exists" in assert_problem(conflict, 409)["detail"]


def test_concurrent_duplicates_of_one_request_create_once(customers_url: str) -> None:
    body, headers = new_customer(), key()

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=customers_url, timeout=20) as client:
            return await asyncio.gather(
                *(client.post("/customers", json=body, headers=headers) for _ in range(8))
            )

    responses = asyncio.run(run())
    assert {r.status_code for r in responses} == {201}
    assert len({r.json()["id"] for r in responses}) == 1
    assert sum("idempotency-replayed" not in r.headers for r in responses) == 1
    with httpx.Client(base_url=customers_url) as client:
        listed = client.get("/customers", params={"email": body["email"]}).json()["items"]
    assert len(listed) == 1


def test_validation_problems_name_the_failing_fields(customers_api: httpx.Client) -> None:
    missing = customers_api.post("/customers", json=new_customer())
    assert assert_problem(missing, 400)["errors"] == [
        {"in": "header", "name": "idempotency-key", "detail": missing.json()["detail"]}
    ]
    bad = customers_api.post(
        "/customers", json={"email": "nope", "name": "", "extra": 1}, headers=key()
    )
    errors = assert_problem(bad, 422)["errors"]
    assert {error["in"] for error in errors} == {"body"}
    assert {error["pointer"] for error in errors} == {"/email", "/name", "/extra"}
    assert "^" not in bad.text  # the email pattern is the contract's business, not quoted
    control = customers_api.post(
        "/customers", json={**new_customer(), "name": "a\u0000b"}, headers=key()
    )
    assert assert_problem(control, 422)["errors"][0]["pointer"] == "/name"
    malformed = customers_api.post(
        "/customers", content=b"{not json", headers={**key(), "content-type": "application/json"}
    )
    assert "not valid JSON" in assert_problem(malformed, 400)["detail"]
    limit = customers_api.get("/customers", params={"limit": 0})
    assert assert_problem(limit, 400)["errors"][0] == {
        "in": "query",
        "name": "limit",
        "detail": "Input should be greater than or equal to 1",
    }
    cursor = customers_api.get("/customers", params={"cursor": "not-a-cursor"})
    assert assert_problem(cursor, 400)["errors"][0]["name"] == "cursor"
    for not_integer in ("2.0", "+2", " 2", "1_0"):  # read as the gateway's validator reads it
        spelled = customers_api.get("/customers", params={"limit": not_integer})
        assert assert_problem(spelled, 400)["errors"][0]["name"] == "limit"
    segment = customers_api.get("/customers", params={"segment": "gold"})
    assert "segment" in assert_problem(segment, 400)["detail"]


def test_unknown_things_are_problems(customers_api: httpx.Client) -> None:
    assert "cus_9999" in assert_problem(customers_api.get("/customers/cus_9999"), 404)["detail"]
    assert_problem(customers_api.get("/customers/..%00bad"), 400)  # malformed: 400
    assert_problem(customers_api.get("/customers/cus_9999/balance"), 404)
    assert_problem(customers_api.get("/nothing/here"), 404)
    method = customers_api.delete("/customers")
    assert_problem(method, 405)
    assert set(method.headers["allow"].split(", ")) == {"GET", "HEAD", "POST"}


def test_balance_is_money_with_two_decimals(customers_api: httpx.Client) -> None:
    balance = customers_api.get("/customers/cus_0002/balance").json()
    assert balance["customer_id"] == "cus_0002"
    assert balance["currency"] == "EUR"
    for field in ("credit_limit", "balance"):
        whole, cents = balance[field].split(".")
        assert whole.isdigit() and len(cents) == 2
    assert float(balance["balance"]) <= float(balance["credit_limit"])


def test_idempotency_keys_are_scoped_to_the_consumer(customers_api: httpx.Client) -> None:
    shared = str(uuid.uuid4())
    first = customers_api.post(
        "/customers",
        json=new_customer(),
        headers={"Idempotency-Key": shared, "X-Consumer-ID": "shop-app"},
    )
    second = customers_api.post(
        "/customers",
        json=new_customer(),
        headers={"Idempotency-Key": shared, "X-Consumer-ID": "partner-acme"},
    )
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] != second.json()["id"]
    assert "idempotency-replayed" not in second.headers


def test_an_expired_key_may_be_used_again(
    customers_api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    headers = key()
    first = customers_api.post("/customers", json=new_customer(), headers=headers)
    assert first.status_code == 201
    monkeypatch.setattr(idempotency, "KEEP_FOR", timedelta(seconds=-1))
    again = customers_api.post("/customers", json=new_customer(), headers=headers)
    assert again.status_code == 201, again.text
    assert again.json()["id"] != first.json()["id"]
