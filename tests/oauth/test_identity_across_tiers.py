"""A signed-in user's identity across the tiers of the demo estate: mobile calls
customer-360, which calls customers and orders; every inner call carries the user by token
exchange, the tier guard judges the acting service, and the gateway's access log of each
hop names the user and the actor chain."""

from __future__ import annotations

import io
import json
import time

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client

from gateway.observability import access_log
from gateway.registry import Registry
from gateway.stack import build_gateway
from tests.oauth.sign_in import PASSWORD, REDIRECT, sign_in
from tests.support.estate import estate_config, run_async, var_dir
from tests.support.servers import serve_asgi


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("tiers")
    config = estate_config(tmp_path).model_copy(update={"access_log": True})
    stream = io.BytesIO()
    previous = access_log._sink
    access_log.configure_access_log(stream)
    try:
        with var_dir(tmp_path / "var"), serve_asgi(build_gateway(config)) as server:

            async def setup() -> str:
                registry = Registry.from_url(config.registry_url)
                try:
                    await registry.create_user("tiers-ana", PASSWORD, "cus_0001")
                    client = await registry.create_public_client(
                        "Shop app", [REDIRECT], ["mobile:read", "mobile:write"]
                    )
                    return client.client_id
                finally:
                    await registry.aclose()

            yield server.url, run_async(setup()), stream
    finally:
        access_log._sink = previous


def _lines(stream: io.BytesIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def _user_token(url: str, client_id: str) -> dict:
    """Sign tiers-ana in through the page with authlib's client; her tokens."""
    verifier = generate_token(64)
    with (
        OAuth2Client(
            client_id,
            redirect_uri=REDIRECT,
            scope="mobile:read",
            code_challenge_method="S256",
            token_endpoint_auth_method="none",
        ) as oauth,
        httpx.Client() as browser,
    ):
        authorize, _ = oauth.create_authorization_url(
            f"{url}/oauth/authorize", code_verifier=verifier
        )
        answer = sign_in(browser, url, authorize, "tiers-ana")
        token = oauth.fetch_token(
            f"{url}/oauth/token",
            authorization_response=answer.headers["location"],
            code_verifier=verifier,
        )
    return dict(token)


def test_the_user_reaches_the_system_apis_through_token_exchange(served):
    url, client_id, stream = served
    token = _user_token(url, client_id)
    bearer = {"authorization": f"Bearer {token['access_token']}"}
    r = httpx.get(f"{url}/experience/mobile/v1/customers/cus_0001/dashboard", headers=bearer)
    assert r.status_code == 200, r.text
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        seen = {line["api"]: line for line in _lines(stream) if line.get("user") == "tiers-ana"}
        if {"mobile", "customer-360", "customers", "orders"} <= set(seen):
            break
        time.sleep(0.05)
    assert seen["mobile"]["actor"] is None  # the app itself, for the user
    assert seen["customer-360"]["actor"] == "svc-mobile"
    assert seen["customers"]["actor"] == "svc-customer-360 svc-mobile"
    assert seen["orders"]["actor"] == "svc-customer-360 svc-mobile"
    assert all(seen[api]["status"] == 200 for api in seen)

    # a second call reuses the exchanged tokens: no new token requests
    exchanges = sum(1 for line in _lines(stream) if line.get("path") == "/oauth/token")
    assert exchanges >= 3  # the app's code exchange, then one per acting service and hop
    assert (
        httpx.get(
            f"{url}/experience/mobile/v1/customers/cus_0001/dashboard", headers=bearer
        ).status_code
        == 200
    )
    time.sleep(0.2)
    assert sum(1 for line in _lines(stream) if line.get("path") == "/oauth/token") == exchanges


def test_a_user_token_cannot_skip_a_tier(served):
    """The app's token for the user is the app's: it may not call a process API."""
    url, client_id, _stream = served
    token = _user_token(url, client_id)
    r = httpx.get(
        f"{url}/process/customer-360/v1/customers/cus_0001",
        headers={"authorization": f"Bearer {token['access_token']}"},
    )
    assert r.status_code in (401, 403)
    # and a client cannot pose as the gateway's identity headers
    r = httpx.get(
        f"{url}/experience/mobile/v1/customers/cus_0001/dashboard",
        headers={"authorization": f"Bearer {token['access_token']}", "x-subject-token": "forged"},
    )
    assert r.status_code == 200


def test_metadata_lists_the_estates_scopes(served):
    url, _client_id, _stream = served
    meta = httpx.get(f"{url}/.well-known/oauth-authorization-server").json()
    assert {"mobile:read", "mobile:write"} <= set(meta["scopes_supported"])
    assert meta["code_challenge_methods_supported"] == ["S256"]


def test_a_signed_in_customer_reads_only_their_own_dashboard(served):
    """The token's customer_id (and, one tier down, the exchanged token's) is what the
    contracts' x-tiergate-bind compares the path with."""
    url, client_id, _stream = served
    token = _user_token(url, client_id)
    bearer = {"authorization": f"Bearer {token['access_token']}"}
    own = httpx.get(f"{url}/experience/mobile/v1/customers/cus_0001/dashboard", headers=bearer)
    assert own.status_code == 200 and own.json()["customer_id"] == "cus_0001"
    for other in ("cus_0002", "cus_0050", "CUS_0001", "cus_00010"):
        r = httpx.get(f"{url}/experience/mobile/v1/customers/{other}/dashboard", headers=bearer)
        assert r.status_code in (403, 404), (other, r.status_code)
        assert r.headers["content-type"] == "application/problem+json"
