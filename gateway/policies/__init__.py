"""Policy registry: one module per policy, each exporting SPEC (a PolicySpec)."""

from __future__ import annotations

from gateway.pipeline import PolicySpec
from gateway.policies import (
    cors,
    deprecation,
    header_transform,
    ip_restriction,
    rate_limit,
    request_size,
    request_validation,
)

_SPECS: list[PolicySpec] = [
    deprecation.SPEC,
    request_size.SPEC,
    cors.SPEC,
    ip_restriction.SPEC,
    rate_limit.SPEC,
    header_transform.SPEC,
    request_validation.SPEC,
]

POLICIES: dict[str, PolicySpec] = {spec.name: spec for spec in _SPECS}

__all__ = ["POLICIES"]
