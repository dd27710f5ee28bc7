"""The `tiergate` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from importlib import metadata

from gateway import init as init_commands
from gateway.admin.token import ensure_admin_token
from gateway.catalogue import commands as catalogue_commands
from gateway.checks import run_checks
from gateway.config import ConfigError
from gateway.contracts import cli as contracts_commands
from gateway.limits import cli as limits_commands
from gateway.loading import load_config
from gateway.policies import PluginError
from gateway.registry import commands as registry_commands
from gateway.registry import state_commands
from gateway.reload import commands as reload_commands
from gateway.server import ListenerFailed, run
from gateway.workers import run_workers, worker_problems

# Each entry adds its subcommands to the parser; areas own their commands.
Registrar = Callable[[argparse._SubParsersAction], None]


def _register_core(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser("up", help="start what the config describes")
    up.add_argument(
        "--workers", type=int, help="processes sharing the public port (default: `workers:`)"
    )
    up.add_argument("--port", type=int, help="public listener port (or $TIERGATE_PUBLIC_PORT)")
    up.add_argument("--admin-port", type=int, help="admin listener port (or $TIERGATE_ADMIN_PORT)")
    up.add_argument("--watch", action="store_true", help="reload when the config changes (dev)")
    up.set_defaults(handler=cmd_up)
    check = sub.add_parser("check", help="validate config, contracts and tier rules")
    check.add_argument("--json", action="store_true", help="print the result as JSON")
    check.set_defaults(handler=cmd_check)


# Each area owns its subcommands: a module with `register(subparsers)`, in help order.
COMMAND_MODULES = (
    registry_commands,
    catalogue_commands,
    limits_commands,
    reload_commands,
    state_commands,
    init_commands,
    contracts_commands,
)


def _register_areas(sub: argparse._SubParsersAction) -> None:
    for module in COMMAND_MODULES:
        module.register(sub)


REGISTRARS: list[Registrar] = [_register_core, _register_areas]


def cmd_up(args: argparse.Namespace) -> int:
    for var, port in (
        ("TIERGATE_PUBLIC_PORT", args.port),
        ("TIERGATE_ADMIN_PORT", args.admin_port),
    ):
        if port is not None:  # in the environment, so that a reload reads the same ports
            os.environ[var] = str(port)
    if args.watch:
        os.environ["TIERGATE_WATCH"] = "1"  # gateway/reload/watch.py; workers inherit it
    config = load_config(args.config)
    workers = config.workers if args.workers is None else args.workers
    if workers < 1:
        print(f"tiergate: --workers {workers}: give 1 or more", file=sys.stderr)
        return 2
    problems = run_checks(config, advisory=False)  # what `check` refuses, `up` refuses too
    problems += worker_problems(config, workers)
    if problems:
        print("tiergate: invalid configuration", file=sys.stderr)
        for problem in problems:
            print(problem, file=sys.stderr)
        return 2
    config = ensure_admin_token(config)  # before the workers fork: they share one token
    return run_workers(config, workers, lambda: run(config))


def cmd_check(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    problems = run_checks(config)
    if args.json:
        result = {"config": str(config.source), "apis": len(config.apis), "problems": problems}
        print(json.dumps(result, indent=2))
        return 1 if problems else 0
    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        return 1
    print(f"ok: {config.source}: {len(config.apis)} APIs, contracts and tier rules valid")
    return 0


CONFIG_HELP = "config file (default: $TIERGATE_CONFIG or tiergate.yaml)"
EXIT_CODES = """exit status, the same for every command:
  0  ok
  1  the command ran and found problems (check, diff, contract-test) or failed
  2  usage error, or the config (or another input) could not be loaded"""


def _version() -> str:
    try:
        return metadata.version("tiergate")
    except metadata.PackageNotFoundError:  # run from a source tree that is not installed
        return "unknown"


def _leaf_parsers(sub: argparse._SubParsersAction) -> Iterator[argparse.ArgumentParser]:
    for command in dict.fromkeys(sub.choices.values()):  # aliases share a parser
        nested = [a for a in command._actions if isinstance(a, argparse._SubParsersAction)]
        if nested:
            for action in nested:
                yield from _leaf_parsers(action)
        else:
            yield command


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(
        prog="tiergate",
        description="Tiergate API gateway",
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    root.add_argument("--version", action="version", version=f"tiergate {_version()}")
    # Before the subcommand: `tiergate --config FILE check`; every subcommand takes it
    # after its name too (added here, once, to those that do not declare it).
    root.add_argument("--config", dest="global_config", metavar="FILE", help=CONFIG_HELP)
    sub = root.add_subparsers(dest="command", required=True)
    for register in REGISTRARS:
        register(sub)
    for command in _leaf_parsers(sub):
        if "--config" not in command._option_string_actions:
            command.add_argument("--config", metavar="FILE", help=CONFIG_HELP)
    return root


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "config", None) is None:
        args.config = args.global_config
    try:
        return int(args.handler(args) or 0)
    except ConfigError as error:
        print(f"tiergate: invalid configuration\n{error}", file=sys.stderr)
        return 2
    except PluginError as error:
        print(f"tiergate: {error}", file=sys.stderr)
        return 2
    except ListenerFailed as error:
        print(f"tiergate: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
