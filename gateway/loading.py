"""Load tiergate.yaml into a GatewayConfig whose APIs carry their validated policy configs.

`gateway.config` reads and validates the file's models and knows no policy; this module
adds what needs the policy registry and the contracts: the tier defaults of each chain,
each policy's config checked by that policy's model, and every operation a policy names
checked against the API's contract. Everything that loads a config goes through here.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from gateway.config.catalogue import sign_in_problems
from gateway.config.errors import ConfigError, problems_from
from gateway.config.loader import contract_file_problems, contract_path, parse_config, read_config
from gateway.config.models import GatewayConfig
from gateway.operations import reference_problem
from gateway.policies import policies as registered_policies
from gateway.policies._contract import ContractError, load_contract

AUTHENTICATION = ("jwt", "api-key", "mtls")  # policies whose credentials `authorize` decides on


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Load, override from the environment and validate; raise ConfigError on any problem."""
    raw, source = read_config(path)
    return validate_config(raw, source, os.environ if env is None else env)


def validate_config(raw: dict[str, Any], source: Path, env: Mapping[str, str]) -> GatewayConfig:
    config = parse_config(raw, source, env)
    problems = contract_file_problems(config, source.parent) + resolve_policies(config)
    if problems:
        raise ConfigError(str(source), problems)
    problems = operation_reference_problems(config) + sign_in_problems(config)
    if problems:
        raise ConfigError(str(source), problems)
    return config


def resolve_policies(config: GatewayConfig) -> list[tuple[str, str]]:
    """Validate each policy's own config with that policy's model."""
    # The policies published as entry points are loaded here, not at import: a plugin
    # importing the gateway must find it importable.
    specs = registered_policies()
    problems: list[tuple[str, str]] = []
    defaults = {}
    for name, raw in config.defaults.items():
        spec = specs.get(name)
        if spec is None:
            problems.append((f"defaults.{name}", _unknown_policy(name)))
            continue
        defaults[name] = raw
    for index, api in enumerate(config.apis):
        resolved: dict[str, BaseModel] = {}
        merged = {**defaults, **api.policies}
        if api.lifecycle == "deprecated":
            merged.setdefault("deprecation", {})
        if api.tier == "experience":
            # Edge traffic is checked against the contract unless the API opts out
            # with `request-validation: false`.
            merged.setdefault("request-validation", {})
        if any(merged.get(name) not in (None, False) for name in AUTHENTICATION):
            merged["authorize"] = {}  # the operation's security is decided once credentials are in
            # the contract's x-tiergate-bind, judged on the identity authorize chose (absent
            # from the chain where no operation binds anything)
            merged.setdefault("object-binding", {})
        for name, raw in merged.items():
            where = f"apis[{index}].policies.{name}" if name in api.policies else f"defaults.{name}"
            spec = specs.get(name)
            if spec is None:
                problems.append((where, _unknown_policy(name)))
                continue
            if raw is False or raw is None:
                continue  # `policy: off` in an API removes a default
            try:
                resolved[name] = spec.config_model.model_validate(
                    {} if raw is True else raw, context={"config": config}
                )
            except ValidationError as exc:
                problems.extend(problems_from(exc, prefix=where))
        api.use_policy_configs(resolved)
    return problems


def operation_reference_problems(config: GatewayConfig) -> list[tuple[str, str]]:
    """Every config key that names an operation must name one of the API's contract."""
    problems: list[tuple[str, str]] = []
    for index, api in enumerate(config.apis):
        named = [
            (f"apis[{index}].policies.{name}.{field}", reference)
            for name, policy in api.policy_configs.items()
            if hasattr(policy, "operation_references")
            for field, reference in policy.operation_references()
        ]
        if api.websocket is not None and api.websocket.operations:
            named += [
                (f"apis[{index}].websocket.operations[{n}]", reference)
                for n, reference in enumerate(api.websocket.operations)
            ]
        if not named:
            continue
        contract = None
        if api.contract is not None:
            try:
                contract = load_contract(contract_path(config, api.contract), validators=False)
            except ContractError as error:
                problems.append((f"apis[{index}].contract", str(error)))
                continue
        for where, reference in named:
            problem = reference_problem(contract, api.name, reference)
            if problem is not None:
                problems.append((where, f"{reference!r} {problem}"))
    return problems


def _unknown_policy(name: str) -> str:
    known = ", ".join(sorted(registered_policies())) or "none"
    return f"unknown policy {name!r}; known policies: {known}"
