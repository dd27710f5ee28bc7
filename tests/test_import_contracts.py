"""The import contracts (pyproject.toml [tool.importlinter]) and the cycle contract type."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp

from tests.support.import_cycles import strongly_connected

ROOT = Path(__file__).resolve().parent.parent


def _graph(*imports: tuple[str, str]) -> grimp.ImportGraph:
    graph = grimp.ImportGraph()
    for importer, imported in imports:
        graph.add_import(importer=importer, imported=imported)
    return graph


def test_a_loop_of_three_modules_is_one_cycle_and_the_rest_is_not():
    graph = _graph(("p.a", "p.b"), ("p.b", "p.c"), ("p.c", "p.a"), ("p.c", "p.d"), ("p.e", "p.a"))
    assert strongly_connected(graph, {"p.a", "p.b", "p.c", "p.d", "p.e"}) == [["p.a", "p.b", "p.c"]]


def test_two_modules_importing_each_other_are_a_cycle():
    graph = _graph(("p.x", "p.y"), ("p.y", "p.x"), ("p.y", "p.z"))
    assert strongly_connected(graph, {"p.x", "p.y", "p.z"}) == [["p.x", "p.y"]]


def test_a_chain_without_a_loop_has_no_cycle():
    graph = _graph(("p.a", "p.b"), ("p.b", "p.c"), ("p.a", "p.c"))
    assert strongly_connected(graph, {"p.a", "p.b", "p.c"}) == []


def test_only_the_modules_asked_about_count():
    graph = _graph(("p.a", "q.b"), ("q.b", "p.a"))
    assert strongly_connected(graph, {"p.a"}) == []


def test_a_long_chain_is_walked_without_recursion():
    chain = [f"p.m{n}" for n in range(5000)]
    graph = _graph(*itertools.pairwise(chain), (chain[-1], chain[0]))
    (cycle,) = strongly_connected(graph, set(chain))
    assert len(cycle) == 5000


LINT = Path(sys.executable).with_name("lint-imports")


def test_a_cycle_breaks_the_contract(tmp_path):
    package = tmp_path / "loopy"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from loopy import b\n")
    (package / "b.py").write_text("def late():\n    from loopy import a  # hidden in a function\n")
    (package / "c.py").write_text("from loopy import a\n")
    (tmp_path / ".importlinter").write_text(
        "[importlinter]\nroot_packages =\n    loopy\ncontract_types =\n"
        "    no_module_cycles: tests.support.import_cycles.NoModuleCyclesContract\n\n"
        "[importlinter:contract:cycles]\nname = no cycles\ntype = no_module_cycles\n"
        "packages =\n    loopy\n"
    )
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{ROOT}"}
    result = subprocess.run(
        [str(LINT), "--no-cache"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no cycles BROKEN" in result.stdout
    assert "Import cycle of 2 modules" in result.stdout
    assert "loopy.a:1 imports loopy.b" in result.stdout
    assert "loopy.b:2 imports loopy.a" in result.stdout
    assert "loopy.c" not in result.stdout


def test_the_project_keeps_its_import_contracts():
    result = subprocess.run(
        [str(LINT), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no import cycle between gateway modules KEPT" in result.stdout
    assert " broken" in result.stdout and "0 broken" in result.stdout


LISTED_BY_MODULE = ("gateway.oauth", "gateway.registry", "gateway.contracts")


def test_every_module_of_the_packages_listed_module_by_module_has_a_layer():
    """A layer cannot name a package one of whose modules sits in another layer (their
    components and commands), so these packages' modules are listed one by one: a new
    module must join them, or it would escape the layers contract."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (layers,) = [c["layers"] for c in config["contracts"] if c["id"] == "gateway-layers"]
    named = {module.strip() for layer in layers for module in layer.split(":")}
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for package in LISTED_BY_MODULE
        for path in (ROOT / package.replace(".", "/")).glob("*.py")
        if path.name != "__init__.py"
    }
    assert sorted(modules - named) == []
