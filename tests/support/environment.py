"""Tests are hermetic: the TIERGATE_* variables of the shell that runs them never reach
a gateway under test, in this process or in a subprocess it spawns."""

from __future__ import annotations

import os

PREFIX = "TIERGATE_"
# Settings of the test harness itself (which PostgreSQL to use), not of the gateway.
HARNESS = ("TIERGATE_TEST_",)


def gateway_variables(environ: dict[str, str] | os._Environ[str] | None = None) -> list[str]:
    """Names of the TIERGATE_* variables a gateway or tier API would read."""
    environ = os.environ if environ is None else environ
    return [name for name in environ if name.startswith(PREFIX) and not name.startswith(HARNESS)]


def clean_environ(**extra: str) -> dict[str, str]:
    """os.environ without the gateway's variables, plus `extra`: a subprocess's env."""
    env = {k: v for k, v in os.environ.items() if k not in gateway_variables()}
    env.update(extra)
    return env
