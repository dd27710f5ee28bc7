"""Every contract names the project's licence, as pyproject.toml declares it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# openapi/components/ holds shared fragments copied into the contracts, not documents
CONTRACTS = sorted(p for p in (ROOT / "openapi").glob("*/*.yaml") if p.parent.name != "components")


def test_contracts_are_found():
    assert len(CONTRACTS) >= 9


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_contract_carries_the_project_licence(contract):
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    licence = yaml.safe_load(contract.read_text())["info"].get("license")
    assert licence is not None, f"{contract} has no info.license"
    assert licence["identifier"] == project["license"]  # an SPDX expression
    assert licence["name"]
