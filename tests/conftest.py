from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.support.environment import gateway_variables
from tests.support.servers import serve_httpbin


@pytest.fixture(scope="session", autouse=True)
def _no_gateway_variables_for_the_session() -> Iterator[None]:
    """Module- and session-scoped fixtures start gateways before any per-test fixture runs:
    clear the shell's TIERGATE_* variables for the whole session first."""
    with pytest.MonkeyPatch.context() as patch:
        for name in gateway_variables():
            patch.delenv(name)
        yield


@pytest.fixture(autouse=True)
def _no_gateway_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts without TIERGATE_* variables, whatever an earlier test set in
    os.environ; a test that needs one sets it itself (monkeypatch.setenv)."""
    for name in gateway_variables(os.environ):
        monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def httpbin_url() -> Iterator[str]:
    with serve_httpbin() as url:
        yield url
