"""`tiergate export [--json|--yaml]` and `tiergate apply FILE [--dry-run] [--prune]`:
the registry as one declarative document (see gateway/registry/declarative.py)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path

import yaml

from gateway.config.models import GatewayConfig
from gateway.registry import audit, declarative
from gateway.registry.commands import _run, _with_config, cli_actor
from gateway.registry.store import Registry

CANNOT_READ = "tiergate: cannot read {path}: {reason}"


def register(sub: argparse._SubParsersAction) -> None:
    export = _with_config(sub.add_parser("export", help="write the registry's state (no secrets)"))
    form = export.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="JSON")
    form.add_argument("--yaml", action="store_true", help="YAML (the default)")
    export.set_defaults(handler=_run(_export))
    apply = _with_config(
        sub.add_parser("apply", help="make the registry match a document; prints the diff")
    )
    apply.add_argument("file", help="a document written by `tiergate export` (YAML or JSON)")
    apply.add_argument("--dry-run", action="store_true", help="print the diff, change nothing")
    apply.add_argument(
        "--prune", action="store_true", help="also delete what the document does not list"
    )
    apply.add_argument("--json", action="store_true", help="print the changes as JSON")
    apply.set_defaults(handler=_run(_apply))


async def _export(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    document = await declarative.export_state(registry)
    if args.json:
        print(json.dumps(document, indent=2, sort_keys=True))
    else:
        print(yaml.safe_dump(document, sort_keys=True), end="")
    return 0


async def _apply(registry: Registry, config: GatewayConfig, args: argparse.Namespace) -> int:
    try:
        text = await asyncio.to_thread(Path(args.file).read_text, encoding="utf-8")
        document = yaml.safe_load(text)  # JSON is YAML too
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        print(CANNOT_READ.format(path=args.file, reason=error), file=sys.stderr)
        return 2  # an input that cannot be loaded (the CLI's exit-code rule)
    problems = declarative.check_document(document)
    if problems:
        for problem in problems:
            print(f"{args.file}: {problem}", file=sys.stderr)
        return 2
    changes = await declarative.plan_changes(registry, document, args.prune)
    secrets: list[tuple[str, str, str]] = []
    if changes and not args.dry_run:
        secrets = await declarative.apply_changes(registry, changes)
        actor = cli_actor()
        for change in changes:
            action = f"apply {change.verb} {change.section.name}"
            await audit.append(registry, actor, action, change.key, change.before, change.after)
    if args.json:
        _print_applied(changes, secrets, applied=bool(changes) and not args.dry_run)
    else:
        _describe_applied(changes, secrets, args.dry_run)
    return 0


def _describe_applied(
    changes: list[declarative.Change], secrets: list[tuple[str, str, str]], dry_run: bool
) -> None:
    for change in changes:
        print("\n".join(change.describe()))
    if not changes:
        print("no changes: the registry matches the document")
    elif dry_run:
        print(f"{len(changes)} changes (dry run: nothing applied)")
    else:
        print(f"{len(changes)} changes applied")
    for section, key, secret in secrets:
        what = "password of user" if section == "users" else "secret of client"
        print(f"new {what} {key} (shown once): {secret}")


def _print_applied(
    changes: list[declarative.Change], secrets: list[tuple[str, str, str]], applied: bool
) -> None:
    result = {
        "changes": [
            {
                "change": change.verb,
                "section": change.section.name,
                "key": change.key,
                "before": change.before,
                "after": change.after,
            }
            for change in changes
        ],
        "applied": applied,
        "new_secrets": [{"section": s, "key": k, "secret": v} for s, k, v in secrets],
    }
    print(json.dumps(result, indent=2))
