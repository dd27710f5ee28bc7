"""`make contract-test`: the full contract run of the estate, through the gateway.

All seven tier APIs, each through the gateway serving the estate (tiergate.yaml) with
real credentials: schemathesis with every check, every phase (examples, coverage,
fuzzing, stateful links), no status allowances, at least 100 examples per operation
and phase, a fresh seed unless `--seed` is given. Prints one line per API (operations,
generated cases, failures, operations without a 2xx) and exits 1 unless every run
passed with 0 failures.

    .venv/bin/python -m tests.contract.full_run [--max-examples N] [--seed S] [--api NAME]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from tests.contract.estate_runs import APIS, run_estate

MAX_EXAMPLES = 100


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="contract-test", description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=MAX_EXAMPLES)
    parser.add_argument("--seed", type=int)
    parser.add_argument("--api", action="append", choices=APIS)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tiergate-contract-test-") as tmp:
        runs = run_estate(
            Path(tmp),
            max_examples=args.max_examples,
            seed=args.seed,
            direct=False,
            workers=args.workers,
            apis=args.api,
            on_done=lambda run: print(run.summary(), flush=True),
        )
    print(
        f"{'API':<18}{'operations':>11}{'cases':>9}{'2xx':>8}{'failures':>10}"
        f"{'errors':>8}  without 2xx"
    )
    for (name, _), run in runs.items():
        print(
            f"{name:<18}{run.operations:>11}{run.cases:>9}{run.successes:>8}"
            f"{len(run.failures):>10}{len(run.errors):>8}  "
            f"{', '.join(run.without_success) or '-'}"
        )
    failed = [run for run in runs.values() if not run.ok]
    for run in failed:
        print(f"\n{run.summary()}\n{run.output}", file=sys.stderr)
    total = sum(r.cases for r in runs.values())
    print(
        f"{len(runs)} APIs, {total} cases, {len(failed)} failed, {time.monotonic() - started:.0f} s"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
