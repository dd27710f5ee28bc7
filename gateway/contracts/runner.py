"""Run schemathesis against a deployed API from its contract, and summarise the run.

The schemathesis CLI does the work in a child process (its own report is the readable
part of a failure); its JSON report gives the numbers: operations, generated cases,
failures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_MAX_EXAMPLES = 5
DEFAULT_PHASES = "examples,coverage,fuzzing,stateful"
RUN_TIMEOUT = 600.0
# A schema-valid order can still be refused for what it means (an unknown product, a key
# reused with another body, no account): the contracts document 422 for that.
SETTINGS = """
[[operations]]
include-method = "POST"
checks.positive_data_acceptance.expected-statuses = [
  "2xx", "3xx", "401", "403", "404", "409", "422", "429", "5xx"]
"""
NO_AUTH_SETTINGS = "[generation]\nwith-security-parameters = false\n"
HOOKS = "gateway.contracts.hooks"
_CLI = "from schemathesis.cli import schemathesis; schemathesis()"


@dataclass
class ContractRun:
    api: str
    url: str
    exit_code: int
    operations: int = 0
    cases: int = 0
    failures: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)
    output: str = ""
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def successes(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and not self.failures and not self.errors

    def summary(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        return (
            f"{verdict}: {self.api} at {self.url}: {self.operations} operations, "
            f"{self.cases} generated cases ({self.successes} 2xx responses), "
            f"{len(self.failures)} failure kinds, "
            f"{len(self.errors)} errors"
        )


def run_contract(
    api: str,
    contract: Path,
    url: str,
    *,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    headers: Sequence[str] = (),
    phases: str = DEFAULT_PHASES,
    seed: int | None = 1,
    workers: int = 1,
    timeout: float = RUN_TIMEOUT,
    auth_checks: bool = True,
) -> ContractRun:
    """Test every operation of `contract` against `url` with all checks.

    `auth_checks=False` is for a deployment that does not enforce credentials (yet):
    no security parameters are generated and `ignored_auth` is left out. Credentials
    given in `headers` are not generated either (schemathesis would put the header back
    into its "missing header" cases); `ignored_auth` checks that calls without them fail.
    """
    with tempfile.TemporaryDirectory(prefix="tiergate-contract-") as tmp:
        report = Path(tmp) / "report.json"
        status_log = Path(tmp) / "statuses.txt"
        settings = Path(tmp) / "schemathesis.toml"
        no_generated_auth = not auth_checks or bool(headers)
        settings.write_text((NO_AUTH_SETTINGS if no_generated_auth else "") + SETTINGS)
        command = [
            sys.executable,
            "-c",
            _CLI,
            "--config-file",
            str(settings),
            "run",
            str(contract),
            "--url",
            url,
            "--checks",
            "all",
            "--max-examples",
            str(max_examples),
            "--phases",
            phases,
            "--workers",
            str(workers),
            "--request-timeout",
            "10",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--no-shrink",
        ]
        if not auth_checks:
            command += ["--exclude-checks", "ignored_auth"]
        if seed is not None:
            command += ["--seed", str(seed)]
        for header in headers:
            command += ["--header", header]
        try:
            done = subprocess.run(  # noqa: S603 - our own interpreter and arguments
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=tmp,
                check=False,
                env=_child_env(status_log),
            )
        except subprocess.TimeoutExpired as exc:
            partial = exc.stdout.decode() if isinstance(exc.stdout, bytes) else exc.stdout or ""
            return ContractRun(
                api, url, 124, output=f"schemathesis did not finish in {timeout:g} s\n{partial}"
            )
        run = ContractRun(api, url, done.returncode, output=done.stdout + done.stderr)
        if status_log.is_file():
            run.statuses = Counter(int(line) for line in status_log.read_text().split())
        if report.is_file():
            document = json.loads(report.read_text())
            run.operations = int(document.get("operations", {}).get("tested", 0))
            run.cases = int(document.get("test_cases", {}).get("generated", 0))
            run.failures = list(document.get("failures") or [])
            run.errors = list(document.get("errors") or [])
        return run


def _child_env(status_log: Path) -> dict[str, str]:
    env = dict(os.environ, SCHEMATHESIS_HOOKS=HOOKS, TIERGATE_CONTRACT_STATUS_LOG=str(status_log))
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
