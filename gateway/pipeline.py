"""The policy chain: a protocol, a spec per policy, and the builder.

Order is data: each policy declares a priority (higher runs first, as in Kong).
A policy ends the request by returning an ASGI response; returning None passes on.
A policy that is not configured for an API is simply absent from its chain.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel

from gateway.config.models import ApiConfig, GatewayConfig
from gateway.context import RequestContext
from gateway.problem import INTERNAL_ERROR, ProblemResponse
from gateway.services import Services
from gateway.types import ASGIApp


class Policy(Protocol):
    async def __call__(self, ctx: RequestContext) -> ASGIApp | None: ...


@dataclass(slots=True)
class BuildContext:
    """What a policy may use when it is built at start-up. `services` holds the services
    its spec declares in `needs`; the other fields are None."""

    config: GatewayConfig
    api: ApiConfig
    services: Services = field(default_factory=Services)
    contract: Any = None  # the API's compiled contract (operation table), None without one


@dataclass(frozen=True, slots=True)
class PolicySpec:
    name: str
    priority: int
    config_model: type[BaseModel]
    build: Callable[[Any, BuildContext], Policy | None]  # None: nothing to do for this API
    description: str = ""
    # The Services fields the policy uses (e.g. ("limiter",)); it is built with those only.
    needs: tuple[str, ...] = ()


# Priorities, highest first. Kept in one place so the order reads top to bottom.
PRIORITY = {
    "deprecation": 2000,
    "ip-restriction": 1000,
    "request-size": 950,
    "cors": 900,
    "jwt": 800,
    "api-key": 790,
    "mtls": 785,
    "authorize": 780,
    "tier-guard": 700,
    "object-binding": 650,
    "rate-limit": 600,
    "request-validation": 500,
    "response-cache": 400,
    "header-transform": 300,
}


def policy_name(policy: Policy) -> str:
    """The registry name of a built policy, for logs and metrics."""
    return str(getattr(policy, "name", type(policy).__name__))


log = logging.getLogger("tiergate")
POLICY_CRASHED = "policy %s of API %s failed; the client got a 500"


def policy_failed(policy: Policy, api: str) -> ProblemResponse:
    """What a policy that raised answers: a bug in a policy (a plugin's, say) is the
    gateway's failure, a problem+json 500 to the client and the traceback to the log.
    Called from the `except` around the chain (HTTP and WebSocket alike)."""
    log.exception(POLICY_CRASHED, policy_name(policy), api)
    return ProblemResponse(500, INTERNAL_ERROR)


def build_chain(
    specs: Mapping[str, PolicySpec],
    config: GatewayConfig,
    api: ApiConfig,
    services: Services,
    contract: Any = None,
) -> tuple[Policy, ...]:
    """Instantiate the API's configured policies in priority order, each given the
    services its spec declares it needs."""
    ordered = sorted(api.policy_configs.items(), key=lambda kv: -specs[kv[0]].priority)
    chain = []
    for name, policy_config in ordered:
        spec = specs[name]
        ctx = BuildContext(
            config=config, api=api, services=services.only(spec.needs), contract=contract
        )
        policy = spec.build(policy_config, ctx)
        if policy is None:
            continue  # configured, but the API gives it nothing to do (e.g. no binding)
        with contextlib.suppress(AttributeError):  # a slotted policy without a `name` slot
            policy.name = name  # type: ignore[attr-defined]
        chain.append(policy)
    return tuple(chain)
