"""`tiergate check`: what loading the config cannot see on its own (contracts, tiers)."""

from __future__ import annotations

from collections.abc import Callable

from gateway.config.models import GatewayConfig

Check = Callable[[GatewayConfig], list[str]]

# Each check returns human sentences naming the file and what is wrong.
CHECKS: list[Check] = []

from gateway.contracts.lint import lint_contracts  # noqa: E402

CHECKS.append(lint_contracts)


def run_checks(config: GatewayConfig) -> list[str]:
    problems: list[str] = []
    for check in CHECKS:
        problems.extend(check(config))
    return problems
