"""Run schemathesis against a deployed API from its contract, and summarise the run.

The schemathesis CLI does the work in a child process (its own report is the readable
part of a failure); its JSON report gives the numbers: operations, generated cases,
failures. Every check runs (`--checks all`) with schemathesis' own expected statuses and
nothing more: an answer the contract does not document, or valid data refused, fails.
All phases run (examples, coverage, fuzzing, stateful links). A run also fails when an
operation of the contract never got a 2xx: a contract test that never once succeeds on
an operation has not tested it.
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

import yaml

DEFAULT_MAX_EXAMPLES = 100
DEFAULT_PHASES = "examples,coverage,fuzzing,stateful"
RUN_TIMEOUT = 3600.0
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
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
    # per operation ("GET /customers/{customer_id}"): how often each status was answered
    by_operation: dict[str, Counter[int]] = field(default_factory=dict)
    documented: list[str] = field(default_factory=list)  # the contract's operations

    @property
    def successes(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def without_success(self) -> list[str]:
        """Operations of the contract that never got a 2xx (never called counts too)."""
        return [
            op
            for op in self.documented
            if not any(200 <= s < 300 for s in self.by_operation.get(op, ()))
        ]

    @property
    def ok(self) -> bool:
        return (
            self.exit_code == 0
            and not self.failures
            and not self.errors
            and not self.without_success
        )

    def summary(self) -> str:
        verdict = "ok" if self.ok else "FAILED"
        text = (
            f"{verdict}: {self.api} at {self.url}: {self.operations} operations, "
            f"{self.cases} generated cases ({self.successes} 2xx responses), "
            f"{len(self.failures)} failures, "
            f"{len(self.errors)} errors"
        )
        if self.without_success:
            text += f"; no 2xx for: {', '.join(self.without_success)}"
        return text


def run_contract(
    api: str,
    contract: Path,
    url: str,
    *,
    max_examples: int = DEFAULT_MAX_EXAMPLES,
    headers: Sequence[str] = (),
    phases: str = DEFAULT_PHASES,
    seed: int | None = None,
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
        settings.write_text(NO_AUTH_SETTINGS if no_generated_auth else "")
        command = [
            sys.executable, "-c", _CLI, "--config-file", str(settings), "run", str(contract),
            "--url", url,
            "--checks", "all",
            "--max-examples", str(max_examples),
            "--phases", phases,
            "--workers", str(workers),
            "--request-timeout", "10",
            "--report", "json", "--report-json-path", str(report),
            "--no-shrink",
        ]  # fmt: skip
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
        run = ContractRun(
            api,
            url,
            done.returncode,
            output=done.stdout + done.stderr,
            documented=operations_of(contract),
        )
        if status_log.is_file():
            run.by_operation = read_status_log(status_log)
            run.statuses = sum(run.by_operation.values(), Counter())
        if report.is_file():
            document = json.loads(report.read_text())
            run.operations = int(document.get("operations", {}).get("tested", 0))
            run.cases = int(document.get("test_cases", {}).get("generated", 0))
            run.failures = list(document.get("failures") or [])
            run.errors = list(document.get("errors") or [])
        return run


def operations_of(contract: Path) -> list[str]:
    """Every operation of the contract as schemathesis labels it: "GET /path/{id}"."""
    document = yaml.safe_load(contract.read_text(encoding="utf-8")) or {}
    return [
        f"{method.upper()} {template}"
        for template, item in (document.get("paths") or {}).items()
        if isinstance(item, dict)
        for method in HTTP_METHODS
        if isinstance(item.get(method), dict)
    ]


def read_status_log(path: Path) -> dict[str, Counter[int]]:
    """The hooks' log, one `<status> <operation label>` per call, as counts per operation."""
    counts: dict[str, Counter[int]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        status, _, label = line.partition(" ")
        if status.isdigit():
            counts.setdefault(label, Counter())[int(status)] += 1
    return counts


def _child_env(status_log: Path) -> dict[str, str]:
    env = dict(os.environ, SCHEMATHESIS_HOOKS=HOOKS, TIERGATE_CONTRACT_STATUS_LOG=str(status_log))
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
