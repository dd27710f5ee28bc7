"""Helpers for testing a policy outside a running gateway (docs/plugins.md).

They do what start-up does, for one policy: validate its config with its own model
(the same call the loader makes), build it with a BuildContext, and make the
RequestContext a request would carry. A policy that passes these checks still
deserves one test through a real `tiergate up` (see examples/policy-plugin/).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel

from gateway.config.models import ApiConfig, GatewayConfig
from gateway.context import RequestContext
from gateway.pipeline import BuildContext, Policy, PolicySpec
from gateway.routing import Route
from gateway.services import Services

DEFAULT_API: dict[str, Any] = {
    "name": "example",
    "tier": "experience",
    "upstream": {"targets": ["http://127.0.0.1:9"]},
}


def validate_policy_config(spec: PolicySpec, raw: Any, config: GatewayConfig | None = None) -> Any:
    """The policy's config as the loader validates it (raises pydantic's ValidationError)."""
    config = config or GatewayConfig()
    return spec.config_model.model_validate({} if raw is True else raw, context={"config": config})


def build_policy(
    spec: PolicySpec,
    raw: Any = True,
    *,
    api: Mapping[str, Any] | ApiConfig | None = None,
    services: Services | None = None,
    contract: Any = None,
) -> Policy | None:
    """Validate `raw` and build the policy for one API, as start-up does (None: the policy
    has nothing to do for this API and stays out of its chain). The policy is given the
    fields of `services` its spec names in `needs`, as at start-up."""
    api_config = api if isinstance(api, ApiConfig) else ApiConfig.model_validate(api or DEFAULT_API)
    config = GatewayConfig(apis=[api_config])
    policy_config: BaseModel = validate_policy_config(spec, raw, config)
    given = (services or Services()).only(spec.needs)
    context = BuildContext(config=config, api=api_config, services=given, contract=contract)
    return spec.build(policy_config, context)


def request_context(
    method: str = "GET",
    path: str = "/experience/example/v1/",
    headers: Iterable[tuple[str, str]] = (),
    *,
    api: Mapping[str, Any] | ApiConfig | None = None,
    client_ip: str = "127.0.0.1",
) -> RequestContext:
    """A RequestContext for a request to `api` (no contract: ctx.operation is None)."""
    api_config = api if isinstance(api, ApiConfig) else ApiConfig.model_validate(api or DEFAULT_API)
    raw = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers]
    path_only, _, query = path.partition("?")
    scope = {
        "type": "http",
        "method": method,
        "path": path_only,
        "raw_path": path_only.encode(),
        "query_string": query.encode(),
        "headers": raw,
        "client": (client_ip, 50000),
    }
    route = Route(api_config, api_config.path, frozenset(api_config.hosts), frozenset())
    return RequestContext(
        scope=scope,
        route=route,
        method=method,
        path=path_only,
        query=query.encode(),
        headers=raw,
        request_id="0" * 32,
        client_ip=client_ip,
        started=time.perf_counter(),
    )


__all__ = ["build_policy", "request_context", "validate_policy_config"]
