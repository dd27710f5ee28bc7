"""The demo estate (tiergate.yaml) with its real security, end to end: an authlib OAuth2
client and a partner key made with the `tiergate` CLI call the experience APIs through
every tier; revocation, the tier guard, API scoping and the free plan's limit hold."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.support.estate import auth_headers, run_async, serve_estate, unique_key

REVOCATION_BOUND = 5.0  # seconds: revocation reaches every node within this time
MOBILE, PARTNER = "/experience/mobile/v1", "/experience/partner/v1"


@dataclass
class Estate:
    url: str
    config_file: Path

    def tiergate(self, *args: str) -> str:
        """Run the `tiergate` CLI against the estate's registry; its output."""
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args, "--config", str(self.config_file)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def cli(self, *args: str) -> dict:
        return json.loads(self.tiergate(*args, "--json"))

    def partner_key(self, consumer: str, plan: str = "free", apis: str = "partner") -> dict:
        return self.cli("keys", "create", "--consumer", consumer, "--plan", plan, "--apis", apis)

    def client(self, scopes: str) -> dict:
        return self.cli("clients", "create", unique_key("shop"), "--scopes", scopes)

    def token(self, client: dict) -> str:
        response = httpx.post(
            f"{self.url}/oauth/token",
            auth=(client["client_id"], client["client_secret"]),
            data={"grant_type": "client_credentials"},
            timeout=30,
        )
        assert response.status_code == 200, response.text
        return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Estate]:
    tmp = tmp_path_factory.mktemp("secure-estate")
    with serve_estate(tmp) as (url, _):
        yield Estate(url, tmp / "tiergate.yaml")


@pytest.fixture(scope="module")
def shop(estate: Estate) -> dict:
    """An OAuth client made with `tiergate clients create`; the scopes of process and
    system APIs too, which must not get it past the tier guard. A client token acts for no
    customer: `mobile:support` (the bypass scope of mobile's bound operations) lets it
    name any (tests/policies/test_object_binding_estate.py covers customers' own tokens)."""
    return estate.client(
        "mobile:read mobile:write mobile:support customer-360:read order-fulfilment:read "
        "customers:read inventory:read"
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def refused_within(
    call: Callable[[], httpx.Response], bound: float = REVOCATION_BOUND + 1.0
) -> float:
    """Seconds until `call()` answers 401 (polled; fails after `bound`)."""
    started = time.monotonic()
    while time.monotonic() - started < bound:
        status = call().status_code
        if status == 401:
            return time.monotonic() - started
        assert status == 200, status
        time.sleep(0.2)
    pytest.fail(f"still accepted {bound:g} s after revocation")


def test_authlib_client_credentials_token_calls_mobile_through_every_tier(
    estate: Estate, shop: dict
) -> None:
    client = shop

    async def main() -> tuple[dict, httpx.Response, httpx.Response, httpx.Response]:
        async with AsyncOAuth2Client(
            client["client_id"],
            client["client_secret"],
            token_endpoint_auth_method="client_secret_basic",
            timeout=30,
        ) as oauth:
            token = await oauth.fetch_token(
                f"{estate.url}/oauth/token", grant_type="client_credentials"
            )
            tiles = await oauth.get(f"{estate.url}{MOBILE}/products?category=tools")
            sku = next(t["sku"] for t in tiles.json()["products"] if t["in_stock"])
            placed = await oauth.post(
                f"{estate.url}{MOBILE}/orders",
                json={"customer_id": "cus_0011", "items": [{"sku": sku, "qty": 1}]},
                headers={"Idempotency-Key": str(uuid.uuid4())},
            )
            dashboard = await oauth.get(f"{estate.url}{MOBILE}/customers/cus_0011/dashboard")
            return token, tiles, placed, dashboard

    token, tiles, placed, dashboard = run_async(main())
    assert token["token_type"].lower() == "bearer" and "mobile:write" in token["scope"]
    assert tiles.status_code == 200 and tiles.json()["products"]
    assert tiles.headers["ratelimit-policy"].startswith('"free/minute";q=60')  # default plan
    assert placed.status_code == 201, placed.text
    # mobile → customer-360 → customers + orders, each hop with its service identity
    assert dashboard.status_code == 200, dashboard.text
    assert dashboard.json()["recent_orders"][0]["id"] == placed.json()["order_id"]
    assert dashboard.json()["notices"] == []


def test_cli_partner_key_orders_for_its_account_and_the_order_shows_in_mobile(
    estate: Estate, shop: dict
) -> None:
    # A consumer named like an account is that account, for the gateway's binding
    # (object-binding.own_accounts in tiergate.yaml) and the partner API alike.
    key = estate.partner_key("cus_0012")
    placed = httpx.post(
        f"{estate.url}{PARTNER}/orders/bulk",
        json={"lines": [{"sku": "SKU-0003", "quantity": 1}]},
        headers={"X-API-Key": key["key"], "Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    assert placed.status_code == 201, placed.text
    assert placed.json()["account"] == "cus_0012"
    other = httpx.post(
        f"{estate.url}{PARTNER}/orders/bulk",
        json={"customer_id": "cus_0013", "lines": [{"sku": "SKU-0003", "quantity": 1}]},
        headers={"X-API-Key": key["key"], "Idempotency-Key": str(uuid.uuid4())},
        timeout=30,
    )
    assert other.status_code == 403  # only for its own account
    token = estate.token(shop)
    dashboard = httpx.get(
        f"{estate.url}{MOBILE}/customers/cus_0012/dashboard", headers=bearer(token), timeout=30
    )
    assert dashboard.status_code == 200, dashboard.text
    assert dashboard.json()["recent_orders"][0]["id"] == placed.json()["order_reference"]


def test_a_key_revoked_with_the_cli_is_refused_within_5_s(estate: Estate) -> None:
    key = estate.partner_key(unique_key("revoked"))

    def call() -> httpx.Response:
        return httpx.get(
            f"{estate.url}{PARTNER}/price-list?limit=1",
            headers={"X-API-Key": key["key"]},
            timeout=30,
        )

    assert call().status_code == 200  # cached as valid from here on
    estate.tiergate("keys", "revoke", key["id"])
    assert refused_within(call) <= REVOCATION_BOUND + 0.5
    assert "revoked" in call().json()["detail"]


def test_a_token_revoked_at_oauth_revoke_is_refused_within_5_s(estate: Estate, shop: dict) -> None:
    client = shop
    token = estate.token(client)  # its own token: revoking it leaves the client's others

    def call() -> httpx.Response:
        return httpx.get(
            f"{estate.url}{MOBILE}/products?limit=1", headers=bearer(token), timeout=30
        )

    assert call().status_code == 200  # in the verified-token cache from here on
    revoked = httpx.post(
        f"{estate.url}/oauth/revoke",
        data={"token": token},
        auth=(client["client_id"], client["client_secret"]),
        timeout=30,
    )
    assert revoked.status_code == 200
    assert refused_within(call) <= REVOCATION_BOUND + 0.5
    assert 'error="invalid_token"' in call().headers["www-authenticate"]


@pytest.mark.parametrize(
    "path",
    [
        "/process/customer-360/v1/customers/cus_0001",
        "/process/order-fulfilment/v1/products?limit=1",
        "/system/customers/v1/customers/cus_0001",
        "/system/inventory/v1/products/SKU-0003",
    ],
)
def test_an_external_client_is_kept_out_of_process_and_system_apis(
    estate: Estate, shop: dict, path: str
) -> None:
    token = estate.token(shop)  # with the right scopes, which do not help
    response = httpx.get(estate.url + path, headers=bearer(token), timeout=30)
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["rule"] == "external-consumers-public-only"


def test_a_service_identity_reaches_only_the_tier_directly_below(estate: Estate) -> None:
    as_mobile = auth_headers("customer-360")  # svc-mobile's token
    ok = httpx.get(
        f"{estate.url}/process/customer-360/v1/customers/cus_0001", headers=as_mobile, timeout=30
    )
    assert ok.status_code == 200, ok.text
    # two tiers down: its scopes are those of the tier below (403 insufficient_scope) ...
    skip = httpx.get(
        f"{estate.url}/system/customers/v1/customers/cus_0001", headers=as_mobile, timeout=30
    )
    assert skip.status_code == 403
    assert 'error="insufficient_scope"' in skip.headers["www-authenticate"]
    # ... and a path outside the contract is the gateway's 404: nothing reaches the API
    unknown = httpx.get(
        f"{estate.url}/system/customers/v1/no-such-resource", headers=as_mobile, timeout=30
    )
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"


def test_mobile_takes_bearer_tokens_only_and_challenges_for_them(estate: Estate) -> None:
    """The mobile contract accepts bearer tokens only: a key, even one listed for mobile,
    satisfies none of its operations, and the 401 offers the Bearer scheme with scopes."""
    key = estate.partner_key(unique_key("both"), apis="partner,mobile")
    for method, path, scope in [
        ("GET", "/products?limit=1", "mobile:read"),
        ("POST", "/orders", "mobile:write"),
    ]:
        response = httpx.request(
            method, f"{estate.url}{MOBILE}{path}", headers={"X-API-Key": key["key"]}, timeout=30
        )
        assert response.status_code == 401, response.text
        assert response.headers.get_list("www-authenticate") == [
            f'Bearer realm="tiergate", scope="{scope}"'
        ]


@pytest.mark.parametrize("path", ["/Products", "/products;x", "/products%2F..", "/admin;x"])
def test_spellings_outside_the_mobile_contract_are_refused(estate: Estate, shop: dict, path: str):
    response = httpx.get(
        f"{estate.url}{MOBILE}{path}", headers=bearer(estate.token(shop)), timeout=30
    )
    assert response.status_code in (400, 404), response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_a_partner_key_for_partner_cannot_call_mobile(estate: Estate) -> None:
    key = estate.partner_key(unique_key("scoped"))
    response = httpx.get(
        f"{estate.url}{MOBILE}/products?limit=1", headers={"X-API-Key": key["key"]}, timeout=30
    )
    assert response.status_code == 401, response.text
    assert response.headers["www-authenticate"].startswith("Bearer ")
    assert (
        httpx.get(
            f"{estate.url}{PARTNER}/price-list?limit=1",
            headers={"X-API-Key": key["key"]},
            timeout=30,
        ).status_code
        == 200
    )


def test_the_free_plan_allows_60_a_minute_then_429_with_ratelimit_headers(estate: Estate) -> None:
    key = estate.partner_key(unique_key("busy"))
    headers = {"X-API-Key": key["key"]}
    # no `sku`: refused by request-validation (after the rate limit), so nothing is forwarded
    with httpx.Client(base_url=estate.url + PARTNER, headers=headers, timeout=30) as http:
        statuses = [http.get("/availability").status_code for _ in range(60)]
        refused = http.get("/availability")
    assert statuses == [400] * 60
    assert refused.status_code == 429, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.headers["ratelimit-policy"].startswith('"free/minute";q=60;w=60')
    assert refused.headers["ratelimit"].startswith('"free/minute";r=0;t=')
    assert refused.headers["x-ratelimit-limit"] == "60"
    assert refused.headers["x-ratelimit-remaining"] == "0"
    assert int(refused.headers["retry-after"]) >= int(refused.headers["x-ratelimit-reset"]) >= 1
