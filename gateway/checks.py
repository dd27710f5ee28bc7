"""`tiergate check`: what loading the config cannot see on its own (contracts, tiers)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.models import GatewayConfig
from gateway.limits.config import check_plan_references

Check = Callable[[GatewayConfig], list[str]]

# Each check returns human sentences naming the file and what is wrong.
CHECKS: list[Check] = [
    check_plan_references,
]


def _request_validation_contracts(config: GatewayConfig) -> list[str]:
    from gateway.policies.request_validation import check_contracts

    return check_contracts(config)


CHECKS.append(_request_validation_contracts)

from gateway.contracts.lint import lint_contracts  # noqa: E402

CHECKS.append(lint_contracts)


def run_checks(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    for check in CHECKS:
        problems.extend(check(config))
    return problems

from gateway.contracts.drift import check_drift  # noqa: E402

CHECKS.append(check_drift)
