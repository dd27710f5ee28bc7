"""Which tier gets the signed-in user's token. A process API is given it (X-Subject-Token)
to exchange for the call below; a system API calls nothing further, so it is told who
the user is but never handed a token it could replay against other system APIs in the
acting service's name."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from gateway.registry import Registry
from tests.oauth.sign_in import estate
from tests.support.edge import CountingUpstream
from tests.support.servers import serve_asgi

BUILTIN = {"issuers": [{"builtin": True}]}


@pytest.fixture(scope="module")
def tiers(tmp_path_factory):
    process, system = CountingUpstream(), CountingUpstream()
    with serve_asgi(process) as process_server, serve_asgi(system) as system_server:
        apis = [
            {
                "name": "customer-360",
                "tier": "process",
                "upstream": {"targets": [process_server.url]},
                "depends_on": ["customers"],
                "policies": {"jwt": BUILTIN},
            },
            {
                "name": "customers",
                "tier": "system",
                "upstream": {"targets": [system_server.url]},
                "policies": {"jwt": BUILTIN},
            },
        ]
        with estate("sqlite", tmp_path_factory.mktemp("subject"), apis=apis) as built:

            async def provision() -> dict[str, tuple[str, str]]:
                registry = Registry.from_url(built.registry_url)
                try:
                    out = {}
                    for api, tier, scopes in [
                        ("mobile", "experience", ["customer-360:read"]),
                        ("customer-360", "process", ["customers:read"]),
                    ]:
                        client, secret = await registry.provision_service_client(api, tier, scopes)
                        out[api] = (client.client_id, secret)
                    return out
                finally:
                    await registry.aclose()

            yield built, asyncio.run(provision()), process, system


def _exchanged(shop, actor: tuple[str, str], subject: str) -> str:
    answer = shop.exchange(actor, subject)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["access_token"])


def _headers(upstream: CountingUpstream) -> dict[str, str]:
    return {name: value for name, value in upstream.requests[-1]["headers"]}


def test_the_process_api_gets_the_users_token_and_the_system_api_only_the_user(tiers):
    shop, services, process, system = tiers
    username, user_token = shop.user_token("cus_0042")

    for_process = _exchanged(shop, services["mobile"], user_token)
    r = httpx.get(
        f"{shop.url}/process/customer-360/v1/customers/cus_0042",
        headers={"authorization": f"Bearer {for_process}"},
    )
    assert r.status_code == 200, r.text
    seen = _headers(process)
    assert seen["x-end-user"] == username and seen["x-customer-id"] == "cus_0042"
    assert seen["x-subject-token"] == for_process  # to exchange for the tier below

    for_system = _exchanged(shop, services["customer-360"], seen["x-subject-token"])
    r = httpx.get(
        f"{shop.url}/system/customers/v1/customers/cus_0042",
        headers={"authorization": f"Bearer {for_system}", "x-subject-token": "forged"},
    )
    assert r.status_code == 200, r.text
    seen = _headers(system)
    assert seen["x-end-user"] == username and seen["x-customer-id"] == "cus_0042"
    assert seen["x-actor"] == "svc-customer-360 svc-mobile"
    assert "x-subject-token" not in seen  # neither the gateway's nor the client's
