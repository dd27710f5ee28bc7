"""`tiergate contract-test [--api NAME] [--base-url URL]`: schemathesis on the contracts."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from typing import Any

from gateway.contracts.lint import api_contract_path
from gateway.contracts.runner import DEFAULT_MAX_EXAMPLES, ContractRun, run_contract
from gateway.loading import load_config

UNKNOWN_API = "tiergate: no API named {name!r} in {source}; known: {known}"
NO_SCHEMATHESIS = (
    "tiergate: contract-test needs schemathesis, which a plain install leaves out; "
    "install it with: pip install 'tiergate[contract-test]'"
)


def register(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "contract-test",
        help="run schemathesis (all checks) on the APIs' contracts against a deployment",
    )
    cmd.add_argument("--config", help="config file (default: $TIERGATE_CONFIG or tiergate.yaml)")
    cmd.add_argument("--api", action="append", help="only this API (repeatable)")
    cmd.add_argument(
        "--base-url",
        help="the gateway's URL (default: the config's public listener); each API's base "
        "path is appended unless --direct",
    )
    cmd.add_argument(
        "--direct",
        action="store_true",
        help="--base-url is the API itself (one --api), not a gateway",
    )
    cmd.add_argument(
        "--max-examples",
        type=int,
        default=DEFAULT_MAX_EXAMPLES,
        help=f"generated cases per operation and phase (default {DEFAULT_MAX_EXAMPLES})",
    )
    cmd.add_argument(
        "--seed",
        type=int,
        help="fix the generation (default: a fresh seed, printed in a failure's report)",
    )
    cmd.add_argument(
        "-H",
        "--header",
        action="append",
        default=[],
        help="`Name: value` sent with every request (e.g. credentials)",
    )
    cmd.add_argument(
        "--skip-auth-checks",
        action="store_true",
        help="the deployment does not enforce credentials (yet): skip schemathesis' auth checks",
    )
    cmd.add_argument("--json", action="store_true", help="print each API's result as JSON")
    cmd.set_defaults(handler=cmd_contract_test)


def cmd_contract_test(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("schemathesis") is None:
        print(NO_SCHEMATHESIS, file=sys.stderr)
        return 2
    config = load_config(args.config)
    known = [api.name for api in config.apis]
    wanted = args.api or known
    for name in wanted:
        if name not in known:
            print(
                UNKNOWN_API.format(name=name, source=config.source, known=", ".join(known)),
                file=sys.stderr,
            )
            return 2
    if args.direct and (not args.base_url or len(wanted) != 1):
        print("tiergate: --direct needs --base-url and exactly one --api", file=sys.stderr)
        return 2
    listener = config.listeners.public
    root = (args.base_url or f"http://{listener.host}:{listener.port}").rstrip("/")
    failed = 0
    results = []
    for name in wanted:
        api = config.api(name)
        url = root if args.direct else root + api.path
        run = run_contract(
            name,
            api_contract_path(config, api),
            url,
            max_examples=args.max_examples,
            headers=args.header,
            auth_checks=not args.skip_auth_checks,
            seed=args.seed,
        )
        if not run.ok:
            failed += 1
            print(run.output, file=sys.stderr)
        if args.json:
            results.append(_result(run))
        else:
            print(run.summary(), flush=True)
    if args.json:
        print(json.dumps({"apis": results, "failed": failed}, indent=2), flush=True)
    if failed:
        print(
            f"tiergate: contract tests failed for {failed} of {len(wanted)} APIs", file=sys.stderr
        )
        return 1
    return 0


def _result(run: ContractRun) -> dict[str, Any]:
    return {
        "api": run.api,
        "url": run.url,
        "ok": run.ok,
        "operations": run.operations,
        "cases": run.cases,
        "failures": len(run.failures),
        "errors": len(run.errors),
        "without_success": run.without_success,
    }
