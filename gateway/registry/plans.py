"""Plans are defined in the config (the rate-limit area owns their shape); the registry
keeps their names and limits as text so keys and consumers can reference them."""

from __future__ import annotations

import json
from typing import Any

from gateway.config import contract_path
from gateway.config.models import GatewayConfig
from gateway.operations import reference_problem
from gateway.policies._contract import load_contract


def configured_plans(config: GatewayConfig) -> dict[str, str]:
    """Plan name → its limits as text; empty when the config defines no plans."""
    raw = getattr(config, "plans", None) or {}
    items = raw.items() if isinstance(raw, dict) else ((getattr(p, "name", ""), p) for p in raw)
    return {str(name): _as_text(value) for name, value in items if name}


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    return json.dumps(value, sort_keys=True, default=str)


def unknown_plan(config: GatewayConfig, plan: str) -> str | None:
    """A sentence saying why `plan` is not usable, or None when it is."""
    plans = configured_plans(config)
    if plans and plan not in plans:
        return f"unknown plan {plan!r}; configured plans: {', '.join(sorted(plans))}"
    return None


def unknown_apis(config: GatewayConfig, apis: list[str]) -> str | None:
    known = {api.name for api in config.apis}
    missing = sorted(set(apis) - known)
    if known and missing:
        return f"unknown APIs {missing}; configured APIs: {', '.join(sorted(known))}"
    return None


def unknown_operations(config: GatewayConfig, apis: list[str], operations: list[str]) -> str | None:
    """A sentence naming an operation grant that no contract of the key's APIs has, or None."""
    contracts = [
        load_contract(contract_path(config, api.contract), validators=False)
        for api in config.apis
        if api.name in apis and api.contract is not None
    ]
    for operation in operations:
        if any(c.find(operation) is not None for c in contracts):
            continue
        problems = [reference_problem(c, "", operation) for c in contracts]
        hint = next((p for p in problems if p and "did you mean" in p), None)
        return f"operation {operation!r} " + (hint or f"is in no contract of {', '.join(apis)}")
    return None
