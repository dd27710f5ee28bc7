"""Policy registry: one module per policy, each exporting SPEC (a PolicySpec)."""

from __future__ import annotations

from gateway.pipeline import PolicySpec
from gateway.policies import api_key, jwt, tier_guard

_SPECS: list[PolicySpec] = [
    jwt.SPEC,
    api_key.SPEC,
    tier_guard.SPEC,
]

POLICIES: dict[str, PolicySpec] = {spec.name: spec for spec in _SPECS}

__all__ = ["POLICIES"]
