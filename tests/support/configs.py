"""Build gateway configs for tests from plain dicts, with a real contract file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gateway.config.loader import validate_config
from gateway.config.models import GatewayConfig

MINIMAL_CONTRACT = """openapi: 3.1.0
info: {title: test, version: "1.0"}
paths: {}
"""


def add_contracts(tmp_path: Path, apis: list[dict[str, Any]]) -> None:
    """Give each API without one a minimal contract that passes `tiergate check`."""
    contract = tmp_path / "contract.yaml"
    if not contract.exists():
        contract.write_text(MINIMAL_CONTRACT)
    for api in apis:
        api.setdefault("tier", "experience")
        # Tests opt in to the experience APIs' default request validation explicitly.
        api.setdefault("policies", {}).setdefault("request-validation", False)
        if "contract" in api:
            continue
        base = api.get("base_path") or f"/{api['tier']}/{api['name']}/{api.get('version', 'v1')}"
        name = f"contract-{api['name']}.yaml"
        (tmp_path / name).write_text(
            MINIMAL_CONTRACT + f"x-tier: {api['tier']}\nservers: [{{url: '{base}'}}]\n"
        )
        api["contract"] = name


def make_config(tmp_path: Path, apis: list[dict[str, Any]], **top: Any) -> GatewayConfig:
    add_contracts(tmp_path, apis)
    top.setdefault("registry_url", f"sqlite:///{tmp_path}/registry.db")  # not ./var in tests
    raw = {"access_log": False, **top, "apis": apis}
    return validate_config(raw, tmp_path / "tiergate.yaml", env={})
