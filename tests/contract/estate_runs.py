"""Schemathesis runs of the seven tier API contracts against the served estate: through
the gateway (real credentials, auth checks on) and, for the upper tiers, directly
against each API on its own socket (the identity headers the gateway would set).

Used by the fast run in `make test` (tests/contract/test_contracts.py: a fixed seed, a
few examples) and the full run of `make contract-test` (tests/contract/full_run.py).
The partner key is linked to the account cus_0001 (TIERGATE_PARTNER_ACCOUNTS) as a
deployed partner's would be, so its valid orders are accepted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from apis.experience import mobile, partner
from apis.process import customer_360, order_fulfilment
from gateway.contracts.lint import api_contract_path
from gateway.contracts.runner import ContractRun, run_contract
from tests.support.estate import (
    AUTH_ENFORCED,
    auth_header_args,
    partner_consumer,
    serve_estate,
    service_env,
)
from tests.support.servers import serve_asgi

APIS = ["customers", "orders", "inventory", "customer-360", "order-fulfilment", "mobile", "partner"]
SYSTEM = ("customers", "orders", "inventory")
PARTNER_ACCOUNT = "cus_0001"  # the account of the contract's examples
ALL_PHASES = "examples,coverage,fuzzing,stateful"
# What the gateway would tell each API directly called (its verified caller).
DIRECT_HEADERS = {"partner": [f"X-Consumer-ID: {PARTNER_ACCOUNT}"]}


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


@contextmanager
def _linked_partner() -> Iterator[None]:
    name = "TIERGATE_PARTNER_ACCOUNTS"
    old = os.environ.get(name)
    os.environ[name] = f"{partner_consumer()}={PARTNER_ACCOUNT}"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def run_estate(
    tmp: Path,
    *,
    max_examples: int,
    seed: int | None,
    direct: bool,
    workers: int = 2,
    apis: list[str] | None = None,
    on_done: Callable[[ContractRun], None] | None = None,
) -> dict[tuple[str, str], ContractRun]:
    """Every (api, mode) run, `workers` at a time (2 cores here)."""
    with serve_estate(tmp) as (gateway_url, config), ExitStack() as stack, _linked_partner():
        urls: dict[str, str] = {}
        if direct:
            urls = {
                name: stack.enter_context(serve_asgi(app)).url
                for name, app in direct_apps(tmp, gateway_url).items()
            }
        jobs: list[tuple[tuple[str, str], dict[str, Any]]] = []
        for name in apis or APIS:
            api = config.api(name)
            common = dict(
                api=name,
                contract=api_contract_path(config, api),
                max_examples=max_examples,
                phases=ALL_PHASES,
                seed=seed,
            )
            jobs.append(
                (
                    (name, "gateway"),
                    dict(
                        common,
                        url=gateway_url + api.path,
                        headers=auth_header_args(name),
                        auth_checks=AUTH_ENFORCED,
                    ),
                )
            )
            if name in urls:
                jobs.append(
                    (
                        (name, "direct"),
                        dict(
                            common,
                            url=urls[name],
                            headers=DIRECT_HEADERS.get(name, []),
                            auth_checks=False,
                        ),
                    )
                )
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {key: pool.submit(run_contract, **kwargs) for key, kwargs in jobs}
            if on_done is not None:
                for future in as_completed(futures.values()):
                    on_done(future.result())
            return {key: future.result() for key, future in futures.items()}
