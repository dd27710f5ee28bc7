"""`tiergate check`: what loading the config cannot see on its own (contracts, tiers).

Each check returns human sentences naming the file and what is wrong. `tiergate up`
refuses to start on the blocking ones; the advisory ones (a contract that drifts
from the in-process app) are reported by `tiergate check` and the contract tests.
"""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.models import GatewayConfig

Check = Callable[[GatewayConfig], list[str]]


def _plan_references(config: GatewayConfig) -> list[str]:
    from gateway.limits.config import check_plan_references

    return check_plan_references(config)


def _request_validation_contracts(config: GatewayConfig) -> list[str]:
    from gateway.policies.request_validation import check_contracts

    return check_contracts(config)


def _tier_lint(config: GatewayConfig) -> list[str]:
    from gateway.contracts.lint import lint_contracts

    return lint_contracts(config)


def _security_schemes(config: GatewayConfig) -> list[str]:
    from gateway.contracts.lint import security_problems

    return security_problems(config)


def _bindings(config: GatewayConfig) -> list[str]:
    from gateway.contracts.lint import binding_problems

    return binding_problems(config)


def _cross_tier(config: GatewayConfig) -> list[str]:
    from gateway.contracts.cross_tier import check_cross_tier

    return check_cross_tier(config)


def _drift(config: GatewayConfig) -> list[str]:
    from gateway.contracts.drift import check_drift

    return check_drift(config)


CHECKS: list[Check] = [
    _plan_references,
    _request_validation_contracts,
    _tier_lint,
    _security_schemes,
    _bindings,
    _cross_tier,
]
ADVISORY: list[Check] = [
    _drift,
]


def run_checks(config: GatewayConfig, advisory: bool = True) -> list[str]:
    problems: list[str] = []
    for check in CHECKS + (ADVISORY if advisory else []):
        problems.extend(check(config))
    return problems
