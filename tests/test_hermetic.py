"""The suite is hermetic: TIERGATE_* variables exported in the shell that runs it reach
neither a test nor a gateway a test starts, in-process or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.environment import clean_environ, gateway_variables
from tests.support.processes import tiergate_up, write_config

ROOT = Path(__file__).resolve().parents[1]
SHELL = {
    "TIERGATE_ADMIN_TOKEN": "x",
    "TIERGATE_LIMITS_STORAGE": "redis://127.0.0.1:6390/0",
    "TIERGATE_REGISTRY_URL": "sqlite:////tmp/nowhere.db",
    "TIERGATE_CONFIG": "/nonexistent.yaml",
}


def test_a_test_starts_without_gateway_variables():
    assert gateway_variables() == []


def test_a_spawned_gateway_does_not_inherit_them(tmp_path, monkeypatch):
    leaked = tmp_path / "leaked.db"
    monkeypatch.setenv("TIERGATE_REGISTRY_URL", f"sqlite:///{leaked}")
    monkeypatch.setenv("TIERGATE_LIMITS_STORAGE", "redis://127.0.0.1:9/0")
    with tiergate_up(write_config(tmp_path, [])) as gateway:
        assert httpx.get(f"{gateway.url}/readyz").json()["status"] == "ready"
    assert not leaked.exists()


def test_tests_that_read_the_admin_token_pass_with_one_exported():
    """The test issue 12 found failing under `TIERGATE_ADMIN_TOKEN=x make test`, run in a
    pytest of its own with the shell's variables exported."""
    target = "tests/policies/test_rate_limit.py::test_quotas_usage_admin_route_and_cli"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", target],
        cwd=ROOT,
        env={**clean_environ(), **SHELL, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
    assert os.environ.get("TIERGATE_ADMIN_TOKEN") is None
