"""Schemathesis (all checks, all phases, no status allowances) on every operation of
every contract, against each API directly (its own uvicorn) and through the gateway
serving the estate config: the fast run (fixed seed, few examples). `make
contract-test` runs the full one (tests/contract/full_run.py).

Through the gateway the runs send real credentials (tests.support.estate.auth_headers:
a token from /oauth/token, or a partner key) with schemathesis' auth checks on; the
direct runs send none (the APIs trust the gateway) and skip them. The seed data and the
contracts' examples and links make the responses meaningful: a run in which any
operation never got a 2xx fails.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.contracts.lint import api_contract_path
from gateway.contracts.runner import ContractRun, run_contract
from tests.contract.estate_runs import APIS, SYSTEM, run_estate
from tests.support.estate import serve_estate

MAX_EXAMPLES = 3
SEED = 1
# The runs happen in the fixture (11 runs, two at a time): minutes, not the 300 s default.
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], ContractRun]]:
    results = run_estate(
        tmp_path_factory.mktemp("contracts"), max_examples=MAX_EXAMPLES, seed=SEED, direct=True
    )
    yield results
    print("\ncontract runs:")
    for run in results.values():
        print(" ", run.summary())
    operations = sum(r.operations for r in results.values())
    cases = sum(r.cases for r in results.values())
    ok = sum(r.successes for r in results.values())
    print(f"  total: {operations} operations tested, {cases} generated cases, {ok} 2xx responses")


CASES = [(name, "gateway") for name in APIS] + [
    (name, "direct") for name in APIS if name not in SYSTEM
]


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_contract_holds(runs: dict[tuple[str, str], ContractRun], name: str, mode: str) -> None:
    run = runs[(name, mode)]
    assert run.ok, f"{run.summary()}\n{run.output}"
    assert run.operations == len(run.documented) and run.cases >= run.operations
    assert not run.without_success, f"never a 2xx: {run.without_success}; {run.by_operation}"


def test_the_auth_checks_catch_an_api_that_ignores_credentials(tmp_path: Path) -> None:
    """What makes the gateway runs' auth checks meaningful: the same run against a
    gateway that lets everyone in (a partial estate serves without auth) fails."""
    with serve_estate(tmp_path, only=["customers"]) as (url, config):
        run = run_contract(
            api="customers",
            contract=api_contract_path(config, config.api("customers")),
            url=url + config.api("customers").path,
            max_examples=1,
            phases="examples",
            headers=["Authorization: Bearer not-checked"],
            auth_checks=True,
            seed=SEED,
        )
    assert not run.ok
    assert "API accepts requests without authentication" in run.output
