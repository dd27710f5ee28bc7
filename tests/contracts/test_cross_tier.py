"""Cross-tier check: a caller's parameters passed down by name are accepted below.

A deliberately mismatched pair (a process API wider than the system API it calls) must
fail `tiergate check` with one sentence per parameter naming both contracts; the estate
and a matching pair pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.cli import main
from gateway.contracts.cross_tier import check_cross_tier, wider
from gateway.loading import validate_config

ROOT = Path(__file__).resolve().parents[2]
NARROW: dict[str, dict[str, Any]] = {
    "cursor": {"type": "string", "pattern": "^[0-9a-f]{1,8}$"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    "status": {"type": "string", "enum": ["placed", "shipped"]},
    "customer_id": {"type": "string", "maxLength": 12, "pattern": "^cus_[0-9]+$"},
}


def contract(
    tier: str, server: str, op: str, params: dict[str, dict[str, Any]], path: str = "/things"
) -> dict[str, Any]:
    parameters = [
        {"name": name, "in": "query", "schema": schema} for name, schema in params.items()
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": op, "version": "1"},
        "x-tier": tier,
        "servers": [{"url": server}],
        "paths": {
            path: {
                "get": {
                    "operationId": op,
                    "parameters": parameters,
                    "responses": {"200": {"description": "ok"}},
                }
            }
        },
        "components": {"schemas": {"Cursor": {"type": "string", "pattern": "^[0-9a-f]{1,15}$"}}},
    }


def write_config(tmp_path: Path, caller: dict[str, dict[str, Any]]) -> Path:
    (tmp_path / "callee.yaml").write_text(
        yaml.safe_dump(contract("system", "/system/callee/v1", "callee_list", NARROW))
    )
    (tmp_path / "caller.yaml").write_text(
        yaml.safe_dump(contract("process", "/process/caller/v1", "caller_list", caller))
    )
    config = {
        "access_log": False,
        "apis": [
            {
                "name": "callee",
                "tier": "system",
                "contract": "callee.yaml",
                "upstream": {"targets": ["http://127.0.0.1:9"]},
            },
            {
                "name": "caller",
                "tier": "process",
                "contract": "caller.yaml",
                "depends_on": ["callee"],
                "upstream": {"targets": ["http://127.0.0.1:9"]},
            },
        ],
    }
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def problems(path: Path) -> list[str]:
    return check_cross_tier(validate_config(yaml.safe_load(path.read_text()), path, env={}))


def test_a_caller_wider_than_its_callee_fails_check_naming_both(tmp_path: Path, capsys) -> None:
    wide = {
        "cursor": {"$ref": "#/components/schemas/Cursor"},  # 15 hex digits, below 8
        "limit": {"type": "integer", "minimum": 1, "maximum": 500},
        "status": {"type": "string", "enum": ["placed", "shipped", "lost"]},
        "customer_id": {"type": "string", "maxLength": 40, "pattern": "^cus_[0-9]+$"},
        "recent": {"type": "integer"},  # not passed down: the callee has no such name
    }
    path = write_config(tmp_path, wide)
    assert main(["check", "--config", str(path)]) == 1
    err = capsys.readouterr().err
    found = {
        name: line for line in err.splitlines() for name in NARROW if f"parameter {name!r}" in line
    }
    assert set(found) == set(NARROW)
    for line in found.values():
        assert "caller (" in line and "caller.yaml" in line
        assert "callee (" in line and "callee.yaml" in line
    assert "admits" in found["cursor"] and "'^[0-9a-f]{1,8}$' refuses" in found["cursor"]
    assert "maximum 500 exceeds 100" in found["limit"]
    assert "['lost']" in found["status"]
    assert "maxLength 40 exceeds 12" in found["customer_id"]
    assert "recent" not in err


def test_a_caller_as_narrow_as_its_callee_passes(tmp_path: Path) -> None:
    narrower = {
        **NARROW,
        "limit": {"type": "integer", "minimum": 1, "maximum": 50},
        "status": {"type": "string", "enum": ["placed"]},
        "cursor": {"type": "string", "pattern": "^[0-9a-f]{1,4}$"},
    }
    assert problems(write_config(tmp_path, narrower)) == []


def test_missing_bounds_are_wider() -> None:
    assert wider({"type": "string"}, NARROW["cursor"])  # no pattern at all
    assert wider({"type": "integer"}, NARROW["limit"])  # unbounded
    assert wider({"type": "string"}, NARROW["status"])  # any string, not the enum
    assert wider({"type": "number", "minimum": 1, "maximum": 100}, NARROW["limit"])
    assert not wider({"type": "integer", "minimum": 1, "maximum": 100}, {"type": "number"})


def test_array_parameters_flow_item_by_item() -> None:
    skus = {"type": "array", "items": {"type": "string", "pattern": "^SKU-[0-9]{4}$"}}
    assert not wider(skus, {"type": "string", "pattern": "^SKU-[0-9]{4}$"})
    loose = {"type": "array", "items": {"type": "string", "pattern": "^SKU-[0-9]{4,6}$"}}
    assert wider(loose, {"type": "string", "pattern": "^SKU-[0-9]{4}$"})


@pytest.mark.parametrize("config", ["tiergate.yaml"])
def test_the_estate_passes(config: str) -> None:
    from gateway.loading import load_config

    assert check_cross_tier(load_config(ROOT / config, env={})) == []
