"""`tiergate check` and `tiergate up` as an operator runs them: real subprocesses."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.processes import tiergate_up, write_config


def tiergate(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=60,
    )


def api(**fields: object) -> dict:
    return {"name": "shop", "upstream": {"targets": ["http://127.0.0.1:9"]}, **fields}


BAD_CONFIGS = {
    "unknown-key": (
        [api(upstrem={})],
        "apis[0].upstrem: unknown key; remove it or check its spelling",
    ),
    "bad-url": (
        [api(upstream={"targets": ["localhost"]})],
        "apis[0].upstream.targets: 'localhost' is not a valid target; use http://host:port",
    ),
    "duplicate-base-path": (
        [api(base_path="/s"), api(name="other", base_path="/s")],
        "apis[1].base_path: APIs 'shop' and 'other' share base path '/s'",
    ),
    "missing-contract": (
        [api(contract="gone.yaml")],
        "apis[0].contract: file 'gone.yaml' not found",
    ),
    "unknown-policy": ([api(policies={"magic": {}})], "apis[0].policies.magic: unknown policy"),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIGS))
def test_check_rejects_bad_config_without_traceback(tmp_path, case):
    apis, expected = BAD_CONFIGS[case]
    config = write_config(tmp_path, apis)
    result = tiergate("check", "--config", str(config), cwd=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{config}: {expected}" in result.stderr, result.stderr


def test_check_rejects_bad_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("listeners: {public: [}\n")
    result = tiergate("check", "--config", str(bad), cwd=tmp_path)
    assert result.returncode == 2
    assert f"{bad}: line 1, column 22: not valid YAML" in result.stderr, result.stderr
    result = tiergate("check", "--config", str(tmp_path / "none.yaml"), cwd=tmp_path)
    assert result.returncode == 2
    assert "none.yaml: cannot read the file" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_accepts_a_good_config_named_by_env(tmp_path):
    config = write_config(tmp_path, [api()])
    env = {"PATH": "/usr/bin:/bin", "TIERGATE_CONFIG": str(config)}
    result = tiergate("check", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert f"ok: {config}: 1 APIs" in result.stdout


def test_up_serves_healthz_on_the_configured_port(tmp_path):
    config = write_config(tmp_path, [])
    port = yaml.safe_load(config.read_text())["listeners"]["public"]["port"]
    with tiergate_up(config) as gateway:
        assert gateway.url.endswith(f":{port}")
        response = httpx.get(f"{gateway.url}/healthz")
        assert response.json() == {"status": "ok"}
        assert httpx.get(f"{gateway.url}/readyz").json()["status"] == "ready"
    assert gateway.proc.returncode == 0
