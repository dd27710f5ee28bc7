"""Build gateway configs for tests from plain dicts.

An API given without a contract has none: it is forwarded by path prefix, so tests of
routing, proxying and policies can use any path. Tests of contract behaviour pass one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from gateway.config.models import GatewayConfig
from gateway.loading import validate_config

MINIMAL_CONTRACT = """openapi: 3.1.0
info: {title: test, version: "1.0"}
paths: {}
"""


def add_contracts(tmp_path: Path, apis: list[dict[str, Any]]) -> None:
    """Defaults for test APIs: experience tier, request validation off unless asked for."""
    for api in apis:
        api.setdefault("tier", "experience")
        # Tests opt in to the experience APIs' default request validation explicitly.
        api.setdefault("policies", {}).setdefault("request-validation", False)


def make_config(tmp_path: Path, apis: list[dict[str, Any]], **top: Any) -> GatewayConfig:
    add_contracts(tmp_path, apis)
    top.setdefault("registry_url", f"sqlite:///{tmp_path}/registry.db")  # not ./var in tests
    raw = {"access_log": False, **top, "apis": apis}
    return validate_config(raw, tmp_path / "tiergate.yaml", env={})


def write_contract(
    tmp_path: Path, name: str, operations: list[str], tier: str = "experience", **top: Any
) -> str:
    """A contract of API `name` declaring `operations` ("METHOD /template"), answering 200,
    that passes the tier lint; its file name. `top` adds top-level members."""
    paths: dict[str, dict[str, Any]] = {}
    for operation in operations:
        method, template = operation.split(" ", 1)
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in template.split("/")
            if part.startswith("{") and part.endswith("}")
        ]
        op: dict[str, Any] = {"responses": {"200": {"description": "ok"}}}
        if params:
            op["parameters"] = params
        paths.setdefault(template, {})[method.lower()] = op
    document = {
        "openapi": "3.1.0",
        "info": {"title": name, "version": "1"},
        "x-tier": tier,
        "servers": [{"url": f"/{tier}/{name}/v1"}],
        "paths": paths,
        **top,
    }
    file = f"contract-{name}.yaml"
    (tmp_path / file).write_text(yaml.safe_dump(document, sort_keys=False))
    return file
