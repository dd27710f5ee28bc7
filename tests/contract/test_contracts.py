"""Schemathesis (all checks) on every operation of every contract, against each API
directly (its own uvicorn) and through the gateway serving the estate config.

Through the gateway the runs send real credentials (tests.support.estate.auth_headers:
a token from /oauth/token, or a partner key) with schemathesis' auth checks on; the
direct runs send none (the APIs trust the gateway) and skip them. The seed data and the contracts'
examples and links make the responses meaningful: a run with fewer 2xx answers than
operations fails below.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import pytest

from apis.experience import mobile, partner
from apis.process import customer_360, order_fulfilment
from gateway.contracts.lint import contract_path
from gateway.contracts.runner import ContractRun, run_contract
from tests.support.estate import AUTH_ENFORCED, auth_header_args, serve_estate, service_env
from tests.support.servers import serve_asgi

APIS = ["customers", "orders", "inventory", "customer-360", "order-fulfilment", "mobile", "partner"]
SYSTEM = ("customers", "orders", "inventory")
MAX_EXAMPLES = 3
PHASES = {"gateway": "examples,coverage,fuzzing,stateful", "direct": "examples,fuzzing,stateful"}


def direct_apps(tmp: Path, gateway_url: str) -> dict[str, object]:
    """The upper tiers on their own sockets, calling the tier below through the gateway
    with their service identities.

    The system APIs' direct runs (on SQLite and PostgreSQL) are in
    tests/apis/system/test_contract_schemathesis.py.
    """

    def env(api: str) -> dict[str, str]:
        return {"TIERGATE_GATEWAY_URL": gateway_url, **service_env(api)}

    return {
        "customer-360": customer_360.create_app(env=env("customer-360")),
        "order-fulfilment": order_fulfilment.create_app(
            env=env("order-fulfilment"), database_url=f"sqlite:///{tmp}/order-fulfilment.db"
        ),
        "mobile": mobile.create_app(env=env("mobile")),
        "partner": partner.create_app(env=env("partner")),
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[tuple[str, str], ContractRun]]:
    """Every (api, mode) run, two at a time (2 cores); each test then checks one."""
    tmp = tmp_path_factory.mktemp("contracts")
    with serve_estate(tmp) as (gateway_url, config), ExitStack() as stack:
        direct = {
            name: stack.enter_context(serve_asgi(app)).url
            for name, app in direct_apps(tmp, gateway_url).items()
        }
        jobs = []
        for name in APIS:
            api = config.api(name)
            urls = {"gateway": gateway_url + api.path}
            if name in direct:
                urls["direct"] = direct[name]
            for mode, url in urls.items():
                gateway = mode == "gateway"
                jobs.append(
                    (
                        (name, mode),
                        dict(
                            api=name,
                            contract=contract_path(config, api),
                            url=url,
                            max_examples=MAX_EXAMPLES,
                            phases=PHASES[mode],
                            headers=auth_header_args(name) if gateway else [],
                            auth_checks=AUTH_ENFORCED and gateway,
                        ),
                    )
                )
        with ThreadPoolExecutor(max_workers=2) as pool:
            futures = {key: pool.submit(run_contract, **kwargs) for key, kwargs in jobs}
            results = {key: future.result() for key, future in futures.items()}
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
    assert run.operations >= 1 and run.cases >= run.operations
    assert run.successes >= run.operations, f"too few 2xx answers: {dict(run.statuses)}"


def test_the_auth_checks_catch_an_api_that_ignores_credentials(tmp_path: Path) -> None:
    """What makes the gateway runs' auth checks meaningful: the same run against a
    gateway that lets everyone in (a partial estate serves without auth) fails."""
    with serve_estate(tmp_path, only=["customers"]) as (url, config):
        run = run_contract(
            api="customers",
            contract=contract_path(config, config.api("customers")),
            url=url + config.api("customers").path,
            max_examples=1,
            phases="examples",
            headers=["Authorization: Bearer not-checked"],
            auth_checks=True,
        )
    assert not run.ok
    assert "API accepts requests without authentication" in run.output
