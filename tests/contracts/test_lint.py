"""Tier lint: each rule of `tiergate check` caught on a bad fixture, and the estate clean."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gateway.cli import main
from gateway.contracts.lint import lint_contracts
from gateway.loading import load_config, validate_config

ROOT = Path(__file__).resolve().parents[2]


def contract(
    tier: str = "system", server: str = "/system/a/v1", op: str = "a_get", **extra: object
) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "t", "version": "1"},
        "x-tier": tier,
        "servers": [{"url": server}],
        "paths": {"/x": {"get": {"operationId": op, "responses": {"200": {"description": "ok"}}}}},
        **extra,
    }


def lint(tmp_path: Path, contracts: dict[str, dict | str], tiers: dict[str, str] | None = None):
    apis = []
    for name, document in contracts.items():
        path = tmp_path / f"{name}.yaml"
        if document is not None:
            path.write_text(document if isinstance(document, str) else yaml.safe_dump(document))
        apis.append(
            {
                "name": name,
                "tier": (tiers or {}).get(name, "system"),
                "contract": path.name,
                "upstream": {"targets": ["http://127.0.0.1:9"]},
            }
        )
    config = validate_config({"apis": apis}, tmp_path / "tiergate.yaml", env={})
    return lint_contracts(config)


def test_a_clean_estate_has_no_problems(tmp_path: Path) -> None:
    assert lint(tmp_path, {"a": contract()}) == []


def test_missing_contract(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(yaml.safe_dump(contract()))
    config = validate_config(
        {
            "apis": [
                {
                    "name": "a",
                    "tier": "system",
                    "contract": "a.yaml",
                    "upstream": {"targets": ["http://127.0.0.1:9"]},
                }
            ]
        },
        tmp_path / "tiergate.yaml",
        env={},
    )
    (tmp_path / "a.yaml").unlink()  # removed after the config was loaded
    [problem] = lint_contracts(config)
    assert problem.startswith("a: contract ") and "does not exist" in problem


def test_unparseable_contract(tmp_path: Path) -> None:
    [problem] = lint(tmp_path, {"a": "openapi: [unclosed"})
    assert "is not valid YAML/JSON" in problem


def test_invalid_openapi(tmp_path: Path) -> None:
    bad = contract()
    bad["paths"]["/x"]["get"]["responses"] = "nope"
    [problem] = lint(tmp_path, {"a": bad})
    assert "is not a valid OpenAPI document" in problem


def test_tier_mismatch(tmp_path: Path) -> None:
    [problem] = lint(tmp_path, {"a": contract(tier="process")})
    assert "declares x-tier 'process' but the config says tier 'system'" in problem


def test_servers_must_name_the_base_path(tmp_path: Path) -> None:
    [problem] = lint(tmp_path, {"a": contract(server="/system/other/v1")})
    assert "do not include the base path '/system/a/v1'" in problem


def test_operation_ids_are_unique_across_the_estate(tmp_path: Path) -> None:
    problems = lint(tmp_path, {"a": contract(), "b": contract(server="/system/b/v1")})
    assert problems == [
        f"b: operationId 'a_get' in {tmp_path / 'b.yaml'} is already used by API 'a'; "
        "operationIds must be unique across the estate"
    ]


def test_check_command_exits_non_zero_on_a_lint_problem(tmp_path: Path, capsys) -> None:
    lint(tmp_path, {"a": contract(tier="experience")})
    config = {
        "apis": [
            {
                "name": "a",
                "tier": "system",
                "contract": "a.yaml",
                "upstream": {"targets": ["http://127.0.0.1:9"]},
            }
        ]
    }
    (tmp_path / "tiergate.yaml").write_text(yaml.safe_dump(config))
    assert main(["check", "--config", str(tmp_path / "tiergate.yaml")]) == 1
    assert "declares x-tier 'experience'" in capsys.readouterr().err


@pytest.mark.parametrize("name", ["customer-360", "order-fulfilment", "mobile", "partner"])
def test_upper_tier_contracts_pass_the_lint(name: str) -> None:
    config = load_config(ROOT / "tiergate.yaml", env={})
    only = config.model_copy(update={"apis": [config.api(name)]})
    object.__setattr__(only, "_source", config.source)
    assert lint_contracts(only) == []
