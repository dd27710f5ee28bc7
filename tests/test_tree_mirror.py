"""Tests mirror `gateway/` file for file (tests/README.md): every module has its test
module, `tests/<same path>/test_<module>.py`, or a line in tests/README.md's table that
says which tests cover it. A package's `__init__.py` that defines nothing (a docstring,
imports, re-exports) needs neither."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GATEWAY = ROOT / "gateway"
TESTS = ROOT / "tests"
# `gateway/<dir>/ (a.py, b.py)` or `gateway/<dir>/a.py, b.py, ...` in the table's first column
GROUPED = re.compile(r"^(gateway/[\w/]*/)\s*\((.*)\)$")


def listed_in_readme(text: str) -> set[str]:
    """The modules the README's table names, as paths from the repository root."""
    listed: set[str] = set()
    for line in text.splitlines():
        cells = line.split("|")
        cell = cells[1].strip().replace("`", "") if len(cells) > 2 else ""
        if not cell.startswith("gateway/"):
            continue
        if grouped := GROUPED.match(cell):
            folder, names = grouped.groups()
            listed.update(folder + name.strip() for name in names.split(","))
            continue
        first, *others = (part.strip() for part in cell.split(","))
        listed.add(first)
        folder = first.rsplit("/", 1)[0]
        listed.update(f"{folder}/{name}" for name in others)
    return listed


def defines_something(module: Path) -> bool:
    tree = ast.parse(module.read_text())
    kinds = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)
    return any(isinstance(node, kinds) for node in tree.body)


def mirrored(module: Path) -> bool:
    relative = module.relative_to(GATEWAY)
    folder = TESTS / relative.parent
    if relative.name == "__init__.py":
        name = relative.parent.name or "init"
        return (folder / f"test_{name}.py").exists() or (folder / "test_init.py").exists()
    stem = relative.stem
    return any((folder / f"test_{name}.py").exists() for name in {stem, stem.lstrip("_")})


def unaccounted() -> list[str]:
    listed = listed_in_readme((TESTS / "README.md").read_text())
    missing = []
    for module in sorted(GATEWAY.rglob("*.py")):
        path = module.relative_to(ROOT).as_posix()
        if "__pycache__" in module.parts or path in listed or mirrored(module):
            continue
        if module.name == "__init__.py" and not defines_something(module):
            continue
        missing.append(path)
    return missing


def test_every_gateway_module_has_a_test_module_or_a_readme_line() -> None:
    missing = unaccounted()
    assert not missing, (
        "these gateway modules have no tests/<same path>/test_<module>.py and no line in "
        f"tests/README.md saying which tests cover them: {missing}"
    )


def test_the_readme_table_is_read_in_both_forms() -> None:
    table = (
        "| gateway/a/b.py, c.py | tests/x.py |\n"
        "| gateway/d/ (e.py, f.py) | tests/y.py |\n"
        "| `gateway/g/__init__.py` | tests/z.py |\n"
        "| not a module | - |\n"
    )
    assert listed_in_readme(table) == {
        "gateway/a/b.py",
        "gateway/a/c.py",
        "gateway/d/e.py",
        "gateway/d/f.py",
        "gateway/g/__init__.py",
    }


def test_the_readme_names_only_modules_that_exist() -> None:
    """A line left behind by a rename or a removal would hide the next module's gap."""
    listed = listed_in_readme((TESTS / "README.md").read_text())
    gone = sorted(path for path in listed if not (ROOT / path).exists())
    assert not gone, f"tests/README.md names modules that do not exist: {gone}"
