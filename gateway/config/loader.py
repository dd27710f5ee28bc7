"""Read tiergate.yaml and the environment into a validated GatewayConfig."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from gateway.catalogue.config import sign_in_problems
from gateway.config.errors import ConfigError, problems_from
from gateway.config.models import GatewayConfig

DEFAULT_CONFIG = "tiergate.yaml"
AUTHENTICATION = ("jwt", "api-key", "mtls")  # policies whose credentials `authorize` decides on
ENV_OVERRIDES = {
    "TIERGATE_REGISTRY_URL": "registry_url",
    "TIERGATE_LIMITS_STORAGE": "limits_storage",
    "TIERGATE_ADMIN_TOKEN": "admin_token",
}
PORT_OVERRIDES = {"TIERGATE_PUBLIC_PORT": "public", "TIERGATE_ADMIN_PORT": "admin"}
BAD_PORT = "{value!r} is not a TCP port (0-65535)"


def config_path(path: str | os.PathLike[str] | None = None) -> Path:
    return Path(path or os.environ.get("TIERGATE_CONFIG") or DEFAULT_CONFIG)


def load_config(
    path: str | os.PathLike[str] | None = None, env: Mapping[str, str] | None = None
) -> GatewayConfig:
    """Load, override from the environment and validate; raise ConfigError on any problem."""
    source = config_path(path)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(str(source), [("", f"cannot read the file: {exc.strerror}")]) from None
    except UnicodeDecodeError as exc:
        problem = f"not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        raise ConfigError(str(source), [("", problem)]) from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(
            str(source),
            [(where, f"not valid YAML ({problem}); check indentation, quotes and brackets")],
        ) from None
    if not isinstance(raw, dict):
        raise ConfigError(str(source), [("", "the top level must be a mapping of settings")])
    return validate_config(raw, source, os.environ if env is None else env)


def validate_config(raw: dict[str, Any], source: Path, env: Mapping[str, str]) -> GatewayConfig:
    raw = dict(raw)
    for var, key in ENV_OVERRIDES.items():
        if env.get(var):
            raw[key] = env[var]
    problems = _override_ports(raw, env)
    if problems:
        raise ConfigError(str(source), problems)
    _default_issuer(raw)
    try:
        config = GatewayConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(str(source), problems_from(exc)) from None
    problems = _check_contracts(config, source.parent) + _resolve_policies(config)
    if problems:
        raise ConfigError(str(source), problems)
    config._source = source.resolve()
    problems = _check_operation_references(config) + sign_in_problems(config)
    if problems:
        raise ConfigError(str(source), problems)
    return config


def _override_ports(raw: dict[str, Any], env: Mapping[str, str]) -> list[tuple[str, str]]:
    """TIERGATE_PUBLIC_PORT / TIERGATE_ADMIN_PORT move a listener without editing the file."""
    problems = []
    for var, name in PORT_OVERRIDES.items():
        value = env.get(var)
        if not value:
            continue
        if not value.isdigit() or int(value) > 65535:
            problems.append((var, BAD_PORT.format(value=value)))
            continue
        listeners = dict(raw.get("listeners") or {})
        listener = listeners.get(name)
        listeners[name] = {**(listener if isinstance(listener, dict) else {}), "port": int(value)}
        raw["listeners"] = listeners
    return problems


def _default_issuer(raw: dict[str, Any]) -> None:
    """`oauth.issuer` unset: the public listener's own URL, so it follows the listener."""
    oauth = raw.get("oauth")
    if oauth is not None and (not isinstance(oauth, dict) or "issuer" in oauth):
        return
    listeners = raw.get("listeners")
    public = listeners.get("public") if isinstance(listeners, dict) else None
    public = public if isinstance(public, dict) else {}
    host, port = public.get("host", "127.0.0.1"), public.get("port", 8080)
    if not isinstance(host, str) or not isinstance(port, int):
        return  # the listener's own validation reports it
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    if ":" in host:
        host = f"[{host}]"
    raw["oauth"] = {**(oauth or {}), "issuer": f"http://{host}:{port}"}


def contract_path(config: GatewayConfig, contract: str) -> Path:
    base = config.source.parent if config.source else Path.cwd()
    return (base / contract).resolve()


def _check_contracts(config: GatewayConfig, base: Path) -> list[tuple[str, str]]:
    problems = []
    for index, api in enumerate(config.apis):
        if api.contract is not None and not (base / api.contract).is_file():
            resolved = (base / api.contract).resolve()
            problems.append(
                (f"apis[{index}].contract", f"file {api.contract!r} not found ({resolved})")
            )
    return problems


def _resolve_policies(config: GatewayConfig) -> list[tuple[str, str]]:
    """Validate each policy's own config with that policy's model."""
    from gateway.policies import POLICIES

    problems: list[tuple[str, str]] = []
    defaults = {}
    for name, raw in config.defaults.items():
        spec = POLICIES.get(name)
        if spec is None:
            problems.append((f"defaults.{name}", _unknown_policy(name)))
            continue
        defaults[name] = raw
    for index, api in enumerate(config.apis):
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
            spec = POLICIES.get(name)
            if spec is None:
                problems.append((where, _unknown_policy(name)))
                continue
            if raw is False or raw is None:
                continue  # `policy: off` in an API removes a default
            try:
                api.policy_configs[name] = spec.config_model.model_validate(
                    {} if raw is True else raw, context={"config": config}
                )
            except ValidationError as exc:
                problems.extend(problems_from(exc, prefix=where))
    return problems


def _check_operation_references(config: GatewayConfig) -> list[tuple[str, str]]:
    """Every config key that names an operation must name one of the API's contract."""
    from gateway.operations import reference_problem
    from gateway.policies._contract import ContractError, load_contract

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
    from gateway.policies import POLICIES

    return f"unknown policy {name!r}; known policies: {', '.join(sorted(POLICIES)) or 'none'}"
