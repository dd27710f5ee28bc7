"""The demo estate for tests: a copy of tiergate.yaml on free ports, and the one place
that says which credentials a test request carries.

When the gateway starts requiring tokens and API keys, change `auth_headers` (and, if
needed, `estate_config`) only: every tier test sends what it returns.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from gateway.config import load_config
from gateway.config.models import GatewayConfig
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ESTATE = ROOT / "tiergate.yaml"


def auth_headers(api: str) -> dict[str, str]:
    """Credentials for calling `api` (through the gateway); none are required yet."""
    return {}


def auth_header_args(api: str) -> list[str]:
    """The same credentials as `Name: value` strings (schemathesis -H / contract-test -H)."""
    return [f"{name}: {value}" for name, value in auth_headers(api).items()]


def estate_config(tmp_path: Path, targets: dict[str, list[str]] | None = None,
                  only: list[str] | None = None) -> GatewayConfig:
    """tiergate.yaml with free ports, contracts by absolute path, optional target overrides.

    The tier APIs keep their databases under TIERGATE_VAR_DIR: set it to a temporary
    directory (monkeypatch.setenv) before the gateway starts.
    """
    raw: dict[str, Any] = yaml.safe_load(ESTATE.read_text())
    raw["listeners"] = {"public": {"host": "127.0.0.1", "port": free_port()},
                        "admin": {"host": "127.0.0.1", "port": free_port()}}
    raw["access_log"] = False
    apis = []
    for api in raw["apis"]:
        if only is not None and api["name"] not in only:
            continue
        api["contract"] = str(ROOT / api["contract"])
        if targets and api["name"] in targets:
            api["upstream"] = {**api["upstream"], "targets": targets[api["name"]]}
        if only is not None:
            api["depends_on"] = [d for d in api.get("depends_on", []) if d in only]
        apis.append(api)
    raw["apis"] = apis
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path, env={})


def unique_key(prefix: str = "k") -> str:
    return f"{prefix}-{time.time_ns()}"


