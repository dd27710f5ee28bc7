"""`tiergate diff OLD NEW`: every change between two versions of a contract, breaking
ones marked. Exit 0 compatible, 1 breaking, 2 a file that cannot be compared."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

import yaml
from openapi_spec_validator import validate
from openapi_spec_validator.validation.exceptions import (
    OpenAPIValidationError,
    ValidatorDetectError,
)

from gateway.catalogue.diff import Change, diff_contracts
from gateway.config import ConfigError
from gateway.config.loader import config_path, contract_path
from gateway.loading import load_config

EXIT_COMPATIBLE, EXIT_BREAKING, EXIT_ERROR = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    diff = sub.add_parser(
        "diff", help="list changes between two contract versions, breaking ones marked (exit 0/1/2)"
    )
    diff.add_argument("old", help="the contract as it is deployed")
    diff.add_argument("new", help="the proposed contract")
    diff.add_argument("--api", help="API name, to list the APIs that depend on it")
    diff.add_argument("--config", help="config used to find dependants (default tiergate.yaml)")
    diff.add_argument("--json", action="store_true", help="print the changes as JSON")
    diff.set_defaults(handler=cmd_diff)


class DiffError(Exception):
    """A file `tiergate diff` cannot compare; exit code 2."""


def _load(path: str) -> dict:
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise DiffError(f"cannot read {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise DiffError(f"cannot read {path}: not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise DiffError(f"{path} is not valid YAML or JSON: {exc}") from None
    if not isinstance(document, dict) or not str(document.get("openapi", "")).startswith("3."):
        raise DiffError(f"{path} is not an OpenAPI 3 document (no 'openapi: 3.x' field)")
    try:
        validate(document)
    except ValidatorDetectError:
        raise DiffError(f"{path}: unsupported OpenAPI version {document['openapi']!r}") from None
    except OpenAPIValidationError as exc:
        at = "/".join(map(str, exc.path)) or "the document root"
        reason = exc.message.split("\n", 1)[0]
        raise DiffError(f"{path} is not a valid OpenAPI document: at {at}: {reason}") from None
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
    """Exit 0: compatible (or no change); 1: something breaks; 2: cannot compare."""
    try:
        changes = diff_contracts(_load(args.old), _load(args.new))
    except DiffError as exc:
        print(f"tiergate diff: {exc}", file=sys.stderr)
        return EXIT_ERROR
    breaking = [c for c in changes if c.breaking]
    if args.json:
        return _print_json(args, changes, len(breaking))
    for change in changes:
        print(change)
    if not changes:
        print("no changes to operations, parameters, bodies, responses or security")
    api, users = dependants(args)
    if breaking:
        print(f"\n{len(breaking)} breaking change(s)" + (f" in API '{api}'" if api else ""))
        if users:
            print("APIs that depend on it: " + ", ".join(users))
    compatible = len(changes) - len(breaking)
    print(("" if breaking else "\nno breaking changes; ") + f"{compatible} compatible change(s)")
    sys.stdout.flush()
    return EXIT_BREAKING if breaking else EXIT_COMPATIBLE


def _print_json(args: argparse.Namespace, changes: list[Change], breaking: int) -> int:
    api, users = dependants(args)
    result = {
        "api": api,
        "changes": [asdict(change) for change in changes],
        "breaking": breaking,
        "compatible": len(changes) - breaking,
        "dependants": users if breaking else [],
    }
    print(json.dumps(result, indent=2), flush=True)
    return EXIT_BREAKING if breaking else EXIT_COMPATIBLE
