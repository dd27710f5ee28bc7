"""Copy the shared problem components into every tier API contract, and list on every
operation the statuses the gateway itself can answer.

    .venv/bin/python scripts/sync_contract_components.py

The source is openapi/components/problems.yaml; tests/contracts/test_shared_components.py
fails when a contract's copy differs or an operation misses a status. The contracts are
edited as text (only the blocks concerned), so their own layout and comments stay.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT / "openapi" / "components" / "problems.yaml"
CONTRACTS = sorted(
    p
    for tier in ("system", "process", "experience")
    for p in (ROOT / "openapi" / tier).glob("*.yaml")
)
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
RENAMED = {
    "Unavailable": "ServiceUnavailable",
    "Timeout": "GatewayTimeout",
    "UnprocessableEntity": "UnprocessableContent",
}
# What the gateway (or any API) may answer on every operation, and on those with a body.
EVERY_OPERATION = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "405": "MethodNotAllowed",
    "413": "ContentTooLarge",
    "429": "TooManyRequests",
    "502": "BadGateway",
    "503": "ServiceUnavailable",
    "504": "GatewayTimeout",
}
WITH_BODY = {"415": "UnsupportedMediaType", "422": "UnprocessableContent"}
_STATUS = re.compile(r"""^(\s*)['"]?([1-5][0-9X]{2}|default)['"]?:""")


def shared() -> dict[str, Any]:
    return yaml.safe_load(SHARED.read_text())["components"]


def expected_statuses(operation: dict[str, Any]) -> dict[str, str]:
    return {**EVERY_OPERATION, **(WITH_BODY if "requestBody" in operation else {})}


def _dump(value: Any, indent: int) -> list[str]:
    text = yaml.safe_dump(value, sort_keys=False, width=100, allow_unicode=True)
    return [" " * indent + line if line else line for line in text.splitlines()]


def _block_end(lines: list[str], start: int, indent: int) -> int:
    """The index after the block whose key line is `start` (children indented deeper)."""
    end = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip() and len(line) - len(line.lstrip()) <= indent:
            break
        end += 1
    while end > start + 1 and not lines[end - 1].strip():
        end -= 1
    return end


def _find(lines: list[str], key: str, indent: int, start: int = 0, stop: int | None = None) -> int:
    for i in range(start, len(lines) if stop is None else stop):
        if lines[i].rstrip() == " " * indent + key + ":":
            return i
    raise LookupError(key)


def _sync_components(lines: list[str], components: dict[str, Any]) -> list[str]:
    top = _find(lines, "components", 0)
    end = _block_end(lines, top, 0)
    at = _find(lines, "responses", 2, top, end)
    stop = _block_end(lines, at, 2)
    existing = yaml.safe_load("\n".join(lines[at + 1 : stop])) or {}
    kept = {
        k: v for k, v in existing.items() if k not in components["responses"] and k not in RENAMED
    }
    lines[at + 1 : stop] = _dump({**components["responses"], **kept}, 4)
    end = _block_end(lines, top, 0)
    at = _find(lines, "schemas", 2, top, end)
    for name in ("Problem", "ProblemError"):
        try:
            start = _find(lines, name, 4, at, _block_end(lines, at, 2))
        except LookupError:
            continue
        del lines[start : _block_end(lines, start, 4)]
    lines[at + 1 : at + 1] = _dump(components["schemas"], 4)
    return lines


def _sync_operations(lines: list[str], document: dict[str, Any]) -> list[str]:
    operations = [
        op
        for item in (document.get("paths") or {}).values()
        for method, op in item.items()
        if method in METHODS
    ]
    top = _find(lines, "paths", 0)
    i, seen = top + 1, 0
    while i < _block_end(lines, top, 0):
        match = re.match(r"^(\s+)responses:\s*$", lines[i])
        if not match:
            i += 1
            continue
        indent = len(match.group(1))
        end = _block_end(lines, i, indent)
        keys = [m for line in lines[i + 1 : end] if (m := _STATUS.match(line))]
        child = len(keys[0].group(1)) if keys else indent + 2
        quote = "'" if "'" in lines[i + 1] else ""
        present = {m.group(2) for m in keys if len(m.group(1)) == child}
        added = []
        for status, name in sorted(expected_statuses(operations[seen]).items()):
            if status not in present:
                added += [
                    f"{' ' * child}{quote}{status}{quote}:",
                    f"{' ' * (child + 2)}$ref: '#/components/responses/{name}'",
                ]
        lines[end:end] = added
        seen += 1
        i = end + len(added)
    if seen != len(operations):
        raise SystemExit(f"found {seen} responses blocks for {len(operations)} operations")
    return lines


def sync(path: Path, components: dict[str, Any]) -> bool:
    text = path.read_text()
    new = re.sub(
        r"(#/components/responses/)(" + "|".join(RENAMED) + r")\b",
        lambda m: m.group(1) + RENAMED[m.group(2)],
        text,
    )
    lines = _sync_components(new.splitlines(), components)
    lines = _sync_operations(lines, yaml.safe_load("\n".join(lines)))
    new = "\n".join(lines) + "\n"
    if new != text:
        path.write_text(new)
    return new != text


def main() -> int:
    components = shared()
    for path in CONTRACTS:
        if sync(path, components):
            print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
