"""The policy list: every policy, built-in or written by users, is a `PolicySpec`
published under the Python entry-point group `tiergate.policies`.

The built-ins are declared in the project's own pyproject.toml, exactly as a plugin
distribution declares its policies (docs/plugins.md), so there is one list and one
way onto it. The list is read once, when first needed; a plugin that cannot be
loaded, or that does not publish a valid PolicySpec, stops start-up with its name
and the error.
"""

from __future__ import annotations

import functools
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from pydantic import BaseModel

from gateway.pipeline import PolicySpec
from gateway.services import NAMES

GROUP = "tiergate.policies"
NOT_LOADABLE = "cannot be loaded: {error}"
NOT_A_SPEC = "is {kind}, not a gateway.pipeline.PolicySpec"
WRONG_NAME = "publishes a PolicySpec named {actual!r}; the entry point and the spec must agree"
BAD_MODEL = "config_model must be a pydantic BaseModel subclass, not {kind}"
BAD_PRIORITY = "priority must be an integer, not {kind}"
NOT_CALLABLE = "build must be callable: build(config, BuildContext) -> policy"
BAD_NEEDS = "needs must be a tuple of Services field names ({known}), not {needs!r}"
TWICE = "is published twice: by {first} and by {second}; uninstall one"
NO_BUILTINS = (
    "no policies are registered under the entry-point group {group!r}; "
    "install the gateway with `pip install -e .` so its entry points exist"
)


class PluginError(Exception):
    """A published policy is broken; the message names it and says why."""

    def __init__(self, name: str, source: str, problem: str) -> None:
        super().__init__(f"policy plugin {name!r} ({source}) {problem}")
        self.name = name


def _source(entry: EntryPoint) -> str:
    dist = entry.dist
    where = f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"
    return f"{where}: {entry.value}"


def _kind(value: Any) -> str:
    return type(value).__name__ if not isinstance(value, type) else f"class {value.__name__}"


def load_spec(entry: EntryPoint) -> PolicySpec:
    """Load and check one entry point's PolicySpec; PluginError when it is broken."""
    source = _source(entry)
    try:
        spec = entry.load()
    except Exception as error:  # any failure of third-party code is reported, not raised
        problem = NOT_LOADABLE.format(error=f"{type(error).__name__}: {error}")
        raise PluginError(entry.name, source, problem) from error
    if not isinstance(spec, PolicySpec):
        raise PluginError(entry.name, source, NOT_A_SPEC.format(kind=_kind(spec)))
    if spec.name != entry.name:
        raise PluginError(entry.name, source, WRONG_NAME.format(actual=spec.name))
    model = spec.config_model
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise PluginError(entry.name, source, BAD_MODEL.format(kind=_kind(model)))
    if not isinstance(spec.priority, int) or isinstance(spec.priority, bool):
        raise PluginError(entry.name, source, BAD_PRIORITY.format(kind=_kind(spec.priority)))
    if not callable(spec.build):
        raise PluginError(entry.name, source, NOT_CALLABLE)
    needs = spec.needs
    if not isinstance(needs, tuple) or not all(isinstance(n, str) and n in NAMES for n in needs):
        problem = BAD_NEEDS.format(known=", ".join(NAMES), needs=needs)
        raise PluginError(entry.name, source, problem)
    return spec


def discover(entries: list[EntryPoint] | None = None) -> dict[str, PolicySpec]:
    """Every published policy by name (the built-ins included)."""
    found = list(entry_points(group=GROUP)) if entries is None else entries
    if not found:
        raise PluginError(GROUP, "entry points", NO_BUILTINS.format(group=GROUP))
    specs: dict[str, PolicySpec] = {}
    sources: dict[str, str] = {}
    for entry in found:
        if entry.name in sources:
            problem = TWICE.format(first=sources[entry.name], second=_source(entry))
            raise PluginError(entry.name, _source(entry), problem)
        specs[entry.name] = load_spec(entry)
        sources[entry.name] = _source(entry)
    return specs


@functools.cache
def policies() -> dict[str, PolicySpec]:
    """The policy list, loaded once per process."""
    return discover()


def __getattr__(name: str) -> Any:
    if name == "POLICIES":  # `from gateway.policies import POLICIES` loads the list lazily
        return policies()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["GROUP", "POLICIES", "PluginError", "discover", "load_spec", "policies"]
