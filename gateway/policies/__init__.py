"""Policy registry: one module per policy, each exporting SPEC (a PolicySpec)."""

from __future__ import annotations

from gateway.pipeline import PolicySpec
from gateway.policies import (
    api_key,
    authorize,
    cors,
    deprecation,
    header_transform,
    ip_restriction,
    jwt,
    object_binding,
    rate_limit,
    request_size,
    request_validation,
    response_cache,
    tier_guard,
)

_SPECS: list[PolicySpec] = [
    deprecation.SPEC,
    request_size.SPEC,
    cors.SPEC,
    ip_restriction.SPEC,
    jwt.SPEC,
    api_key.SPEC,
    authorize.SPEC,
    tier_guard.SPEC,
    object_binding.SPEC,
    rate_limit.SPEC,
    header_transform.SPEC,
    request_validation.SPEC,
    response_cache.SPEC,
]

POLICIES: dict[str, PolicySpec] = {spec.name: spec for spec in _SPECS}

__all__ = ["POLICIES"]
