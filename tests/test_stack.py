"""Start-up in one function: the components in start order, the services they hand over
in one frozen Services, the guards and observers given to the Gateway, and each policy
built with exactly the services its spec needs."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest
from pydantic import BaseModel

from gateway.admin.identity import IdentityAdminComponent
from gateway.cache.component import CacheComponent
from gateway.catalogue.component import CatalogueComponent
from gateway.limits.component import LimitsComponent
from gateway.oauth.component import OAuthComponent
from gateway.observability.component import GatewayGauges, ObservabilityComponent
from gateway.pipeline import BuildContext, PolicySpec, build_chain
from gateway.policies.rate_limit import RateLimitPolicy
from gateway.registry.component import RegistryComponent
from gateway.reload.component import ReloadComponent
from gateway.services import Services
from gateway.stack import build_gateway, create_app
from tests.support.configs import make_config

UPSTREAM = "http://127.0.0.1:9"
START_ORDER = [
    RegistryComponent,
    OAuthComponent,
    IdentityAdminComponent,
    LimitsComponent,
    CacheComponent,
    ObservabilityComponent,
    GatewayGauges,
    CatalogueComponent,
    ReloadComponent,
]


def _api(name: str, policies: dict[str, object] | None = None) -> dict[str, object]:
    return {"name": name, "upstream": {"targets": [UPSTREAM]}, "policies": policies or {}}


def test_components_are_built_in_start_up_order(tmp_path):
    gateway = build_gateway(make_config(tmp_path, [_api("shop")]))
    assert [type(each) for each in gateway.components] == START_ORDER
    assert create_app is build_gateway


def test_without_metrics_there_are_no_gauges(tmp_path):
    config = make_config(tmp_path, [_api("shop")], observability={"metrics": {"enabled": False}})
    gateway = build_gateway(config)
    assert [type(each) for each in gateway.components] == [
        each for each in START_ORDER if each is not GatewayGauges
    ]


def test_the_services_are_the_components_own_and_frozen(tmp_path):
    gateway = build_gateway(make_config(tmp_path, [_api("shop")]))
    services = gateway.services
    assert services.registry is gateway.component(RegistryComponent).registry
    oauth = gateway.component(OAuthComponent)
    assert services.issuer is oauth.ring
    assert services.revocations is oauth.revocations
    assert services.service_credentials is oauth.credentials
    assert services.limiter is gateway.component(LimitsComponent).limiter
    assert services.response_cache is gateway.component(CacheComponent).registry
    observability = gateway.component(ObservabilityComponent)
    assert services.dataflow is observability.dataflow
    assert services.tracer is None and services.span_exporter is None  # tracing is off
    with pytest.raises(dataclasses.FrozenInstanceError):
        services.limiter = None  # type: ignore[misc]


def test_guards_and_observers_are_given_not_added(tmp_path):
    config = make_config(
        tmp_path, [_api("shop")], rate_limiting={"token_endpoint_limit": "5/minute"}
    )
    gateway = build_gateway(config)
    limits = gateway.component(LimitsComponent)
    observability = gateway.component(ObservabilityComponent)
    assert gateway.shell_guards == (limits.guard_oauth_endpoints,)
    assert gateway.observers == (observability.observe,)
    assert observability.metrics is not None
    assert gateway.unrouted_observers == (observability.metrics.observe_unrouted,)
    before = (gateway.shell_guards, gateway.observers, gateway.unrouted_observers)

    async def start_and_stop() -> None:
        await gateway.startup()
        await gateway.shutdown()

    asyncio.run(start_and_stop())
    assert (gateway.shell_guards, gateway.observers, gateway.unrouted_observers) == before


def test_no_limit_on_the_oauth_endpoints_means_no_guard(tmp_path):
    config = make_config(
        tmp_path,
        [_api("shop")],
        rate_limiting={"token_endpoint_limit": None, "introspection_endpoint_limit": None},
    )
    assert build_gateway(config).shell_guards == ()


def test_a_started_chain_uses_the_gateway_limiter(tmp_path):
    config = make_config(tmp_path, [_api("shop", {"rate-limit": {"limits": ["5/minute"]}})])
    gateway = build_gateway(config)

    async def start_and_stop() -> None:
        await gateway.startup()
        try:
            (policy,) = [p for p in gateway.table.routes[0].chain if p.name == "rate-limit"]
            assert isinstance(policy, RateLimitPolicy)
            assert policy.limiter is gateway.services.limiter
        finally:
            await gateway.shutdown()

    asyncio.run(start_and_stop())


class _Empty(BaseModel):
    pass


def test_a_policy_is_given_exactly_what_it_needs(tmp_path):
    gateway = build_gateway(make_config(tmp_path, [_api("shop")]))
    seen: list[Services] = []

    def build(config: _Empty, ctx: BuildContext) -> None:
        seen.append(ctx.services)

    spec = PolicySpec("spy", 100, _Empty, build, needs=("limiter", "jwks"))
    config = gateway.config
    api = config.apis[0].model_copy()
    api.use_policy_configs({"spy": _Empty()})
    assert build_chain({"spy": spec}, config, api, gateway.services) == ()
    (given,) = seen
    assert given.limiter is gateway.services.limiter
    assert given.jwks is gateway.services.jwks  # the one shared table
    assert given.registry is None and given.issuer is None and given.response_cache is None
    assert given.service_credentials == {}
