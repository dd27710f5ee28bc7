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


def make_config(tmp_path: Path, apis: list[dict[str, Any]], **top: Any) -> GatewayConfig:
    contract = tmp_path / "contract.yaml"
    if not contract.exists():
        contract.write_text(MINIMAL_CONTRACT)
    for api in apis:
        api.setdefault("contract", "contract.yaml")
        api.setdefault("tier", "experience")
    top.setdefault("registry_url", f"sqlite:///{tmp_path}/registry.db")  # not ./var in tests
    raw = {"access_log": False, **top, "apis": apis}
    return validate_config(raw, tmp_path / "tiergate.yaml", env={})
