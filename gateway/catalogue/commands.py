"""`tiergate diff OLD NEW`: breaking changes between two versions of a contract."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from gateway.catalogue.diff import diff_contracts
from gateway.config import ConfigError, load_config
from gateway.config.loader import config_path, contract_path


def register(sub: argparse._SubParsersAction) -> None:
    diff = sub.add_parser("diff", help="report breaking changes between two contract versions")
    diff.add_argument("old", help="the contract as it is deployed")
    diff.add_argument("new", help="the proposed contract")
    diff.add_argument("--api", help="API name, to list the APIs that depend on it")
    diff.add_argument("--config", help="config used to find dependants (default tiergate.yaml)")
    diff.set_defaults(handler=cmd_diff)


def _load(path: str) -> dict:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SystemExit(f"tiergate diff: cannot read {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise SystemExit(f"tiergate diff: {path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(document, dict) or "paths" not in document:
        raise SystemExit(f"tiergate diff: {path} is not an OpenAPI document (no 'paths')")
    return document


def dependants(args: argparse.Namespace) -> tuple[str | None, list[str]]:
    """The API the contract belongs to, and every API that calls it directly or not."""
    if not args.config and not config_path(None).exists():
        return args.api, []
    try:
        config = load_config(args.config)
    except ConfigError:
        return args.api, []
    name = args.api
    if name is None:
        wanted = {Path(args.old).resolve(), Path(args.new).resolve()}
        name = next(
            (
                a.name
                for a in config.apis
                if a.contract and contract_path(config, a.contract) in wanted
            ),
            None,
        )
    if name is None or name not in {a.name for a in config.apis}:
        return name, []
    callers: dict[str, list[str]] = {}
    for api in config.apis:
        for dep in api.depends_on:
            callers.setdefault(dep, []).append(api.name)
    seen, frontier = set(), [name]
    while frontier:
        for caller in callers.get(frontier.pop(), []):
            if caller not in seen:
                seen.add(caller)
                frontier.append(caller)
    return name, sorted(seen)


def cmd_diff(args: argparse.Namespace) -> int:
    changes = diff_contracts(_load(args.old), _load(args.new))
    breaking = [c for c in changes if c.breaking]
    for change in changes:
        print(change)
    if not changes:
        print("no changes to operations, parameters, bodies or responses")
    api, users = dependants(args)
    if breaking:
        print(f"\n{len(breaking)} breaking change(s)" + (f" in API '{api}'" if api else ""))
        if users:
            print("APIs that depend on it: " + ", ".join(users))
    else:
        print(f"\nno breaking changes ({len(changes)} compatible change(s))")
    sys.stdout.flush()
    return 1 if breaking else 0
