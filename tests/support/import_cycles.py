"""An import-linter contract type: no import cycle between the modules of a package.

import-linter's own `acyclic_siblings` judges whole sibling packages; this one judges
modules, so that a cycle of two modules anywhere under `gateway` breaks the lint even
where no layers contract lists them. Registered in pyproject.toml (`contract_types`) and
run by `lint-imports`.
"""

from __future__ import annotations

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: each group of two or more modules importing each
    other (directly or through the others), sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root) & modules)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child) & modules
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return sorted(groups)


class NoModuleCyclesContract(Contract):
    type_name = "no_module_cycles"

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        modules: set[str] = set()
        for package in self.packages:  # type: ignore[attr-defined]
            modules |= {package} | graph.find_descendants(package)
        cycles = strongly_connected(graph, modules)
        found = []
        for group in cycles:
            members = set(group)
            imports = [
                f"{detail['importer']}:{detail['line_number']} imports {imported}"
                for importer in group
                for imported in sorted(graph.find_modules_directly_imported_by(importer) & members)
                for detail in graph.get_import_details(importer=importer, imported=imported)
            ]
            found.append({"modules": group, "imports": imports})
        return ContractCheck(kept=not found, warnings=None, metadata={"cycles": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        for cycle in check.metadata["cycles"]:
            output.print_error(
                f"Import cycle of {len(cycle['modules'])} modules; its imports (cut one):"
            )
            output.new_line()
            for line in cycle["imports"]:
                output.indent_cursor()
                output.print_error(f"- {line}")
            output.new_line()
