"""Config errors that name the file, the field and the fix."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


class ConfigError(Exception):
    """Invalid configuration; ``str()`` is the message shown to the operator."""

    def __init__(self, source: str, problems: Sequence[tuple[str, str]]) -> None:
        self.source = source
        self.problems = list(problems)
        lines = [
            f"{source}: {field}: {message}" if field else f"{source}: {message}"
            for field, message in self.problems
        ]
        super().__init__("\n".join(lines))


def field_path(loc: Sequence[int | str], root: object = None) -> str:
    """Render a pydantic location as `apis[2].upstream.targets[0]`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_from(error: ValidationError, prefix: str = "") -> list[tuple[str, str]]:
    problems = []
    for item in error.errors(include_url=False):
        loc = [p for p in item["loc"] if p not in ("function-after",)]
        path = field_path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key; remove it or check its spelling"
        elif message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
            if message.startswith("@") and ": " in message:
                where, message = message[1:].split(": ", 1)
                path = f"{path}.{where}" if path else where
        problems.append((path, message))
    return problems
