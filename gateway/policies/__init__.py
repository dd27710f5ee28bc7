"""Policy registry: one module per policy, each exporting SPEC (a PolicySpec)."""

from __future__ import annotations

from gateway.pipeline import PolicySpec
from gateway.policies import deprecation

_SPECS: list[PolicySpec] = [
    deprecation.SPEC,
]

POLICIES: dict[str, PolicySpec] = {spec.name: spec for spec in _SPECS}

__all__ = ["POLICIES"]
