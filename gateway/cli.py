"""The `tiergate` command line."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from gateway.config import ConfigError, load_config
from gateway.server import ListenerFailed

# Each entry adds its subcommands to the parser; areas own their commands.
Registrar = Callable[[argparse._SubParsersAction], None]


def _register_core(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="start what the config describes")
    up.add_argument("--config", help="config file (default: $TIERGATE_CONFIG or tiergate.yaml)")
    up.add_argument("--watch", action="store_true", help="reload when the config changes (dev)")
    up.set_defaults(handler=cmd_up)
    check = sub.add_parser("check", help="validate config, contracts and tier rules")
    check.add_argument("--config", help="config file (default: $TIERGATE_CONFIG or tiergate.yaml)")
    check.set_defaults(handler=cmd_check)


# Modules with a `register(subparsers)` function, one per area.
COMMAND_MODULES = [
    "gateway.registry.commands",
    "gateway.catalogue.commands",
    "gateway.limits.cli",
    "gateway.reload.commands",
    "gateway.registry.state_commands",
]


def _register_areas(sub: argparse._SubParsersAction) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)


REGISTRARS: list[Registrar] = [_register_core, _register_areas]

from gateway.contracts.cli import register as _register_contracts  # noqa: E402

REGISTRARS.append(_register_contracts)


def cmd_up(args: argparse.Namespace) -> int:
    from gateway.checks import run_checks
    from gateway.server import run

    config = load_config(args.config)
    if args.watch:
        os.environ["TIERGATE_WATCH"] = "1"  # gateway/reload/watch.py; workers inherit it
    problems = run_checks(config, advisory=False)  # what `check` refuses, `up` refuses too
    if problems:
        print("tiergate: invalid configuration", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    run(config)
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    from gateway.checks import run_checks

    config = load_config(args.config)
    problems = run_checks(config)
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {config.source}: {len(config.apis)} APIs, contracts and tier rules valid")
    return 0


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tiergate", description="Tiergate API gateway")
    sub = root.add_subparsers(dest="command", required=True)
    for register in REGISTRARS:
        register(sub)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as error:
        print(f"tiergate: invalid configuration\n{error}", file=sys.stderr)
        return 2
    except ListenerFailed as error:
        print(f"tiergate: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
