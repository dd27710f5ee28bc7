"""The tier guard over real uvicorn → gateway → httpbin: identities come from real
signed tokens (jwt policy) and real API keys (api-key policy)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from gateway.policies import tier_guard as policy
from gateway.policies.tier_guard import TierGuardConfig
from tests.support.auth_estate import identity_gateway
from tests.support.tokens import BUILTIN_ISSUER as ISSUER
from tests.support.tokens import claims, sign

# -- config -------------------------------------------------------------------------------


def test_config_has_no_knobs():
    assert TierGuardConfig.model_validate({}) == TierGuardConfig()
    with pytest.raises(ValidationError, match="Extra inputs"):
        TierGuardConfig.model_validate({"service_kind": "partner"})


# -- behaviour ------------------------------------------------------------------------------

ESTATE = [
    ("mobile", "experience", ["customer-360"], {}),
    ("partner", "experience", ["order-fulfilment"], {}),
    ("customer-360", "process", ["customers", "orders"], {}),
    ("order-fulfilment", "process", ["orders"], {}),
    ("catalogue-feed", "process", [], {"visibility": "public"}),
    ("customers", "system", [], {}),
    ("orders", "system", [], {}),
]


@pytest.fixture(scope="module")
def env(tmp_path_factory, httpbin_url) -> Iterator[Any]:
    tmp_path = tmp_path_factory.mktemp("tiers")
    apis = [
        {
            "name": name,
            "tier": tier,
            "depends_on": deps,
            "upstream": {"targets": [httpbin_url]},
            **extra,
        }
        for name, tier, deps, extra in ESTATE
    ]
    apis.append(
        {
            "name": "open",
            "upstream": {"targets": [httpbin_url]},
            "policies": {"jwt": {"optional": True}},
        }
    )
    defaults = {"jwt": {}, "tier-guard": {}}
    with identity_gateway(tmp_path, apis, defaults=defaults) as env:
        yield env


def call(env, tier: str, api: str, token: str | None = None) -> httpx.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return httpx.get(f"{env.url}/{tier}/{api}/v1/get", headers=headers, timeout=10)


def client(env) -> str:
    return sign(env.key, claims(ISSUER))


def service(env, api: str, tier: str) -> str:
    return sign(
        env.key,
        claims(
            ISSUER,
            sub=f"svc-{api}",
            client_id=f"svc-{api}",
            tg_kind="service",
            tg_api=api,
            tg_tier=tier,
        ),
    )


def forbidden(response: httpx.Response, detail: str, rule: str) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["detail"], body["rule"]) == (detail, rule)


def test_external_clients_reach_public_apis_only(env):
    token = client(env)
    assert call(env, "experience", "mobile", token).status_code == 200
    assert call(env, "process", "catalogue-feed", token).status_code == 200  # marked public
    for tier, api in [("process", "customer-360"), ("system", "customers")]:
        detail = policy.PUBLIC_ONLY.format(api=api, tier=tier)
        forbidden(call(env, tier, api, token), detail, policy.RULE_PUBLIC)


def test_partners_with_api_keys_are_external_too(tmp_path, httpbin_url):
    apis = [
        {"name": n, "tier": t, "upstream": {"targets": [httpbin_url]}}
        for n, t in [("partner", "experience"), ("orders", "system")]
    ]
    defaults = {"api-key": {}, "tier-guard": {}}
    with identity_gateway(tmp_path, apis, defaults=defaults) as env:

        async def create(registry):
            return (await registry.create_api_key("acme", "gold", ["partner", "orders"]))[1]

        headers = {"x-api-key": env.registry(create)}
        r = httpx.get(f"{env.url}/experience/partner/v1/get", headers=headers)
        assert r.status_code == 200
        r = httpx.get(f"{env.url}/system/orders/v1/get", headers=headers)
        forbidden(r, policy.PUBLIC_ONLY.format(api="orders", tier="system"), policy.RULE_PUBLIC)


def test_a_real_service_client_of_the_builtin_server(env):
    """A service identity as the OAuth server issues it: client_credentials for svc-<api>."""

    async def provision(registry):
        client, secret = await registry.provision_service_client(
            "customer-360", "process", ["customers:read"]
        )
        return client.client_id, secret

    credentials = env.registry(provision)
    r = httpx.post(
        f"{env.url}/oauth/token", data={"grant_type": "client_credentials"}, auth=credentials
    )
    token = r.json()["access_token"]
    assert call(env, "system", "customers", token).status_code == 200
    r = call(env, "system", "orders", token)
    assert r.status_code == 200  # customer-360 depends on orders too
    r = call(env, "experience", "mobile", token)
    detail = policy.WRONG_TIER.format(
        caller_tier="process",
        caller="customer-360",
        below="system",
        api="mobile",
        a_tier="an experience",
    )
    forbidden(r, detail, policy.RULE_TIER)


def test_service_identities_call_one_tier_down_what_they_depend_on(env):
    assert (
        call(env, "process", "customer-360", service(env, "mobile", "experience")).status_code
        == 200
    )
    assert (
        call(env, "system", "customers", service(env, "customer-360", "process")).status_code == 200
    )
    assert (
        call(env, "system", "orders", service(env, "order-fulfilment", "process")).status_code
        == 200
    )


@pytest.mark.parametrize(
    ("caller", "caller_tier", "tier", "api", "template"),
    [
        ("customer-360", "process", "experience", "partner", policy.WRONG_TIER),
        ("mobile", "experience", "system", "customers", policy.WRONG_TIER),
        ("order-fulfilment", "process", "system", "customers", policy.NOT_A_DEPENDENCY),
        ("mobile", "experience", "process", "order-fulfilment", policy.NOT_A_DEPENDENCY),
        ("customers", "system", "system", "orders", policy.BOTTOM_TIER),
        ("customer-360", "process", "process", "order-fulfilment", policy.WRONG_TIER),
    ],
)
def test_service_violations_name_the_rule(env, caller, caller_tier, tier, api, template):
    r = call(env, tier, api, service(env, caller, caller_tier))
    below = {"experience": "process", "process": "system"}.get(caller_tier)
    a_tier = ("an " if tier == "experience" else "a ") + tier
    detail = template.format(
        caller=caller, caller_tier=caller_tier, below=below, api=api, a_tier=a_tier
    )
    forbidden(r, detail, policy.RULE_TIER)


def test_the_example_sentence(env):
    r = call(env, "experience", "partner", service(env, "customer-360", "process"))
    assert r.json()["detail"] == (
        "process API 'customer-360' may only call system APIs it depends on; "
        "'partner' is an experience API."
    )


def test_service_identity_must_match_the_config(env):
    r = call(env, "system", "customers", service(env, "customer-360", "experience"))
    detail = policy.TIER_MISMATCH.format(
        caller="customer-360", claimed="experience", tier="process"
    )
    forbidden(r, detail, policy.RULE_TIER)
    r = call(env, "system", "customers", service(env, "ghost", "process"))
    forbidden(r, policy.UNKNOWN_CALLER.format(caller="ghost"), policy.RULE_TIER)


def test_no_identity_is_401(env):
    r = call(env, "experience", "open")
    assert r.status_code == 401
    assert r.json()["detail"] == policy.NO_IDENTITY
    assert r.headers["www-authenticate"] == 'Bearer realm="tiergate"'
    assert call(env, "experience", "open", client(env)).status_code == 200
