from __future__ import annotations

import compileall
import os
from collections.abc import Iterator
from pathlib import Path

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


@pytest.fixture(scope="session", autouse=True)
def _bytecode_for_subprocesses() -> None:
    """Hundreds of tests start `python -m gateway.cli` or tier APIs in subprocesses.
    Where the environment sets PYTHONDONTWRITEBYTECODE, none of them writes bytecode and
    each compiled every gateway module again (~0.15 s CPU a process): written once here
    instead, into __pycache__/ as Python does by default (git ignores it)."""
    root = Path(__file__).resolve().parents[1]
    for package in ("gateway", "apis"):
        compileall.compile_dir(root / package, quiet=1)


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
