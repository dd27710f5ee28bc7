"""RFC 8693 token exchange at the built-in server: a tier API's service client turns a
signed-in user's access token into one for the tier below: `sub` and `customer_id` of
the user, `client_id` and tier claims of the actor, `act` naming the actor chain."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client

from gateway.registry import Registry
from tests.oauth.helpers import verify_with_served_jwks
from tests.oauth.sign_in import ACCESS_TOKEN_TYPE, EXCHANGE, estate


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def shop(request, tmp_path_factory):
    with estate(request.param, tmp_path_factory.mktemp("exchange")) as built:

        async def services() -> dict[str, tuple[str, str]]:
            registry = Registry.from_url(built.registry_url)
            try:
                out = {}
                for api, tier, scopes in [
                    ("mobile", "experience", ["customer-360:read", "orders:read"]),
                    ("customer-360", "process", ["customers:read"]),
                ]:
                    client, secret = await registry.provision_service_client(api, tier, scopes)
                    out[api] = (client.client_id, secret)
                return out
            finally:
                await registry.aclose()

        built.services = asyncio.run(services())
        yield built


def test_exchanged_token_carries_the_user_and_the_actor(shop):
    username, user_token = shop.user_token("cus_0042")
    with OAuth2Client(*shop.services["mobile"], scope="customer-360:read") as oauth:
        token = oauth.fetch_token(
            f"{shop.url}/oauth/token",
            grant_type=EXCHANGE,
            subject_token=user_token,
            subject_token_type=ACCESS_TOKEN_TYPE,
        )
    assert token["issued_token_type"] == ACCESS_TOKEN_TYPE and token["token_type"] == "Bearer"
    claims = verify_with_served_jwks(shop.url, token["access_token"])
    subject = verify_with_served_jwks(shop.url, user_token)
    assert claims["sub"] == username and claims["customer_id"] == "cus_0042"
    assert claims["client_id"] == "svc-mobile"
    assert claims["act"] == {"sub": "svc-mobile"}
    assert (claims["tg_kind"], claims["tg_api"], claims["tg_tier"]) == (
        "service",
        "mobile",
        "experience",
    )
    assert claims["scope"] == "customer-360:read"
    assert claims["exp"] <= subject["exp"] and claims["jti"] != subject["jti"]

    # the process API exchanges what it was called with: the chain nests (RFC 8693 §4.1)
    deeper = shop.exchange(shop.services["customer-360"], token["access_token"])
    assert deeper.status_code == 200, deeper.text
    inner = verify_with_served_jwks(shop.url, deeper.json()["access_token"])
    assert inner["sub"] == username and inner["customer_id"] == "cus_0042"
    assert inner["client_id"] == "svc-customer-360" and inner["tg_tier"] == "process"
    assert inner["act"] == {"sub": "svc-customer-360", "act": {"sub": "svc-mobile"}}
    assert inner["scope"] == "customers:read"  # default: the actor's scopes


def test_only_service_clients_exchange(shop):
    _username, user_token = shop.user_token()
    r = shop.exchange(shop.confidential, user_token)
    assert (r.status_code, r.json()["error"]) == (400, "unauthorized_client")
    r = httpx.post(
        f"{shop.url}/oauth/token",
        data={
            "grant_type": EXCHANGE,
            "subject_token": user_token,
            "subject_token_type": ACCESS_TOKEN_TYPE,
            "client_id": shop.client_id,
        },
    )
    assert (r.status_code, r.json()["error"]) == (401, "invalid_client")


def test_subject_must_be_a_live_user_token_of_ours(shop):
    actor = shop.services["mobile"]
    service_token = httpx.post(
        f"{shop.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=actor
    ).json()["access_token"]
    for subject in (service_token, "not-a-jwt", user_token_tampered(shop)):
        r = shop.exchange(actor, subject)
        assert (r.status_code, r.json()["error"]) == (400, "invalid_grant"), subject[:20]
    _username, revoked = shop.user_token()
    assert (
        httpx.post(
            f"{shop.url}/oauth/revoke", data={"token": revoked, "client_id": shop.client_id}
        ).status_code
        == 200
    )
    r = shop.exchange(actor, revoked)
    assert (r.status_code, r.json()["error"]) == (400, "invalid_grant")


def user_token_tampered(shop) -> str:
    _username, token = shop.user_token()
    head, body, signature = token.split(".")
    return f"{head}.{body}.{signature[::-1]}"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ({"scope": "customers:write"}, "invalid_scope"),
        ({"subject_token_type": "urn:ietf:params:oauth:token-type:id_token"}, "invalid_request"),
        ({"actor_token": "x", "actor_token_type": ACCESS_TOKEN_TYPE}, "invalid_request"),
        (
            {"requested_token_type": "urn:ietf:params:oauth:token-type:refresh_token"},
            "invalid_request",
        ),
        ({"audience": "someone-else"}, "invalid_target"),
    ],
)
def test_exchange_refusals(shop, extra, error):
    _username, user_token = shop.user_token()
    r = shop.exchange(shop.services["mobile"], user_token, **extra)
    assert (r.status_code, r.json()["error"]) == (400, error)


def test_authlib_client_sees_refusal_as_an_oauth_error(shop):
    with OAuth2Client(*shop.services["mobile"]) as oauth, pytest.raises(OAuthError) as refused:
        oauth.fetch_token(
            f"{shop.url}/oauth/token",
            grant_type=EXCHANGE,
            subject_token="x",
            subject_token_type=ACCESS_TOKEN_TYPE,
        )
    assert refused.value.error == "invalid_grant"
