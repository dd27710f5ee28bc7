"""Schemathesis (all checks) runs each system contract directly against its API.

Authentication is the gateway's job: the system APIs trust the identity headers it
sets, so here the contract's security requirements are removed and `ignored_auth`
cannot apply. The upper tiers' contract tests run the full contracts through the
gateway. The run is a real `st run` in a subprocess against the real uvicorn server.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.apis.system.conftest import Backend

ROOT = Path(__file__).resolve().parents[3]
ST = Path(sys.executable).with_name("st")
MAX_EXAMPLES = "3"
SEED = "20261127"
# Every warning but the two 404 heuristics: random reservation ids in the fuzzing phase
# are rightly 404 (the examples phase uses the seeded res_000001/res_000002 instead).
WARNINGS = ",".join([
    "missing_auth", "validation_mismatch", "missing_deserializer", "unused_openapi_auth",
    "unsupported_regex", "method_not_allowed", "unmatched_filter", "unresolvable_reference",
    "rate_limited", "dictionary_mismatch", "timeout_units",
])  # fmt: skip


def without_security(name: str, directory: Path) -> Path:
    document = yaml.safe_load((ROOT / "openapi" / "system" / f"{name}.yaml").read_text())
    document.pop("security", None)
    document["components"].pop("securitySchemes", None)
    for item in document["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict):
                operation.pop("security", None)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def start_schemathesis(contract: Path, url: str) -> subprocess.Popen[str]:
    """`st run` in the contract's (temporary) directory, where it keeps its own cache."""
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "SCHEMATHESIS_HOOKS": "tests.support.schemathesis_hooks",
    }
    command = [
        str(ST), "run", str(contract), "--url", url, "--checks", "all",
        "--max-examples", MAX_EXAMPLES, "--seed", SEED, "--request-timeout", "10",
        "--warnings", WARNINGS,
    ]  # fmt: skip
    return subprocess.Popen(
        command,
        cwd=contract.parent,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_contracts_hold_against_the_apis(
    backend: Backend, customers_url: str, orders_url: str, inventory_url: str, tmp_path: Path
) -> None:
    """The three runs go in parallel (each API has its own server)."""
    urls = {"customers": customers_url, "orders": orders_url, "inventory": inventory_url}
    runs = {
        name: start_schemathesis(without_security(name, tmp_path), url)
        for name, url in urls.items()
    }
    reports = {}
    try:
        for name, run in runs.items():
            reports[name] = (run.communicate(timeout=180)[0], run.returncode)
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
    for name, (report, returncode) in reports.items():
        assert returncode == 0, f"{name}:\n{report}"
        assert "No issues found" in report, f"{name}:\n{report}"
        assert "WARNINGS" not in report, f"{name}:\n{report}"
