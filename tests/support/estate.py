"""The demo estate for tests: a copy of tiergate.yaml on free ports, and the one place
that says which credentials a test request carries.

When the gateway starts requiring tokens and API keys, change `auth_headers` (and, if
needed, `estate_config`) only: every tier test sends what it returns.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
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




@contextmanager
def var_dir(path: Path) -> Iterator[Path]:
    """Point the tier APIs' databases (TIERGATE_VAR_DIR) at `path` for the block."""
    old = os.environ.get("TIERGATE_VAR_DIR")
    os.environ["TIERGATE_VAR_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("TIERGATE_VAR_DIR", None)
        else:
            os.environ["TIERGATE_VAR_DIR"] = old


@contextmanager
def serve_estate(tmp_path: Path, **kwargs: Any) -> Iterator[tuple[str, GatewayConfig]]:
    """The estate's gateway (all tier APIs in-process) on a real socket: (url, config)."""
    from gateway.app import Gateway
    from tests.support.servers import serve_asgi

    config = estate_config(tmp_path, **kwargs)
    with var_dir(tmp_path / "var"), serve_asgi(Gateway(config)) as server:
        yield server.url, config


# Whether the gateway demands credentials; while False the contract runs skip the
# schemathesis auth checks (nothing would answer 401). Flip together with auth_headers.
AUTH_ENFORCED = False
