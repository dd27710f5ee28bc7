"""What the outer contracts accept, the tiers below handle: through the gateway, over
the real in-process estate (tiergate.yaml) with its real credentials.

- any cursor the outer contracts accept is a position (15 hex digits; past the end is
  an empty page), never a 5xx from below;
- `2.0` is the integer 2 for the gateway's validator and the APIs alike;
- validation problems have one shape at every tier;
- when a tier below refuses the client's own value (here: an inventory one version
  behind), the client gets a 400 naming its parameter, never a 502/503, and the API
  stays up; a refusal of a value the client did not send is the API's fault (502).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.estate import auth_headers, serve_estate

MOBILE = "/experience/mobile/v1"
PARTNER = "/experience/partner/v1"
BELOW = ("inventory", "order-fulfilment", "orders", "customers")  # never named to clients


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with serve_estate(tmp_path_factory.mktemp("estate")) as (url, _):
        yield url


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    targets = {"inventory": ["asgi:tests.support.older_tiers:inventory"]}
    with serve_estate(tmp_path_factory.mktemp("skewed"), targets=targets) as (url, _):
        yield url


def get(url: str, api: str, **params: str) -> httpx.Response:
    base = {"mobile": MOBILE, "partner": PARTNER}[api]
    path = "/products" if api == "mobile" else "/price-list"
    return httpx.get(url + base + path, params=params, headers=auth_headers(api), timeout=30)


def problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert not any(name in body["detail"] for name in BELOW), body["detail"]
    assert "^" not in body["detail"]  # no regexes
    return body


@pytest.mark.parametrize("api", ["mobile", "partner"])
@pytest.mark.parametrize("cursor", ["123456789", "fffffffffffffff", "0"])
def test_every_cursor_the_outer_contract_accepts_is_a_position(
    estate: str, api: str, cursor: str
) -> None:
    response = get(estate, api, cursor=cursor)
    assert response.status_code == 200, response.text
    page = response.json()
    items = page["products"] if api == "mobile" else page["entries"]
    if cursor != "0":  # past every product: an empty last page
        assert items == [] and page["next" if api == "mobile" else "next_cursor"] is None


def _bulk(url: str, quantity: str) -> httpx.Response:
    body = (
        '{"customer_id": "cus_0002", "lines": [{"sku": "SKU-0003", "quantity": ' + quantity + "}]}"
    )
    return httpx.post(
        url + PARTNER + "/orders/bulk",
        content=body,
        timeout=30,
        headers={
            "content-type": "application/json",
            "Idempotency-Key": str(uuid.uuid4()),
            **auth_headers("partner"),
        },
    )


@pytest.mark.parametrize("quantity", ["2.0", "2e0"])
def test_an_integral_number_is_an_integer_at_every_tier(estate: str, quantity: str) -> None:
    response = _bulk(estate, quantity)
    assert response.status_code == 201, response.text
    assert response.json()["lines"][0]["quantity"] == 2


def test_a_fraction_is_refused_by_the_gateway_in_the_documented_shape(estate: str) -> None:
    body = problem(_bulk(estate, "2.5"), 422)
    assert body["title"] == "Unprocessable Content"
    assert body["errors"] == [
        {"in": "body", "pointer": "/lines/0/quantity", "detail": '2.5 is not of type "integer"'}
    ]


def test_a_malformed_path_parameter_is_400_and_called_a_path_parameter(estate: str) -> None:
    mobile = httpx.get(
        f"{estate}{MOBILE}/customers/CUS-1/dashboard", headers=auth_headers("mobile"), timeout=30
    )  # the gateway answers
    c360 = httpx.get(
        f"{estate}/process/customer-360/v1/customers/CUS-1",
        headers=auth_headers("customer-360"),
        timeout=30,
    )  # the API answers
    for response in (mobile, c360):
        body = problem(response, 400)
        assert body["detail"].startswith("The path parameter 'customer_id' is not valid")
        assert body["errors"] == [
            {"in": "path", "name": "customer_id", "detail": "does not have the expected format"}
        ]


def test_the_clients_value_refused_below_is_the_clients_400(skewed: str) -> None:
    for _ in range(10):  # as many as it takes to open a breaker counting 5xx
        body = problem(get(skewed, "mobile", cursor="123456789"), 400)
        assert body["errors"] == [
            {"in": "query", "name": "cursor", "detail": "does not have the expected format"}
        ]
        assert body["detail"].startswith("The query parameter 'cursor' is not valid")
    limit = problem(get(skewed, "mobile", limit="45"), 400)
    assert [e["name"] for e in limit["errors"]] == ["limit"]
    assert get(skewed, "mobile").status_code == 200  # up for everyone else
    assert get(skewed, "mobile", cursor="1234").status_code == 200


def test_a_value_the_client_did_not_send_refused_below_is_a_502(skewed: str) -> None:
    # partner asks for its default page of 50, which the older inventory refuses
    body = problem(get(skewed, "partner"), 502)
    assert body["title"] == "Bad Gateway" and "errors" not in body
    assert get(skewed, "partner", limit="40").status_code == 200
