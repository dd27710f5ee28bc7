"""The system contracts are valid OpenAPI 3.1 and follow the house rules."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from openapi_spec_validator import validate

CONTRACTS = Path(__file__).resolve().parents[3] / "openapi" / "system"
NAMES = ["customers", "orders", "inventory"]
METHODS = {"get", "post", "put", "patch", "delete"}
SCOPES = {f"{name}:{access}" for name in NAMES for access in ("read", "write")}


def load(name: str) -> dict:
    return yaml.safe_load((CONTRACTS / f"{name}.yaml").read_text())


@pytest.mark.parametrize("name", NAMES)
def test_contract_passes_openapi_spec_validator(name: str) -> None:
    document = load(name)
    validate(document)
    assert document["openapi"].startswith("3.1")


@pytest.mark.parametrize("name", NAMES)
def test_contract_declares_tier_owner_and_server(name: str) -> None:
    document = load(name)
    assert document["x-tier"] == "system"
    assert document["info"]["x-owner"]
    assert document["info"]["description"].strip()
    assert document["servers"] == [{"url": f"/system/{name}/v1"}]


@pytest.mark.parametrize("name", NAMES)
def test_every_operation_is_named_scoped_and_documents_problems(name: str) -> None:
    document = load(name)
    seen: set[str] = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            operation_id = operation["operationId"]
            assert operation_id.startswith(f"{name}_"), operation_id
            assert operation_id not in seen
            seen.add(operation_id)
            scopes = {s for req in operation["security"] for s in req["bearer"]}
            assert scopes and scopes <= SCOPES, (path, method, scopes)
            access = "read" if method == "get" else "write"
            assert scopes == {f"{name}:{access}"}, (path, method)
            errors = [code for code in operation["responses"] if code.startswith("4")]
            assert "400" in errors, (path, method)
            for code in errors:
                ref = operation["responses"][code]["$ref"]
                response = document["components"]["responses"][ref.rsplit("/", 1)[1]]
                assert "application/problem+json" in response["content"]
    assert seen


def test_operation_ids_are_unique_across_the_system_tier() -> None:
    ids = [
        operation["operationId"]
        for name in NAMES
        for item in load(name)["paths"].values()
        for method, operation in item.items()
        if method in METHODS
    ]
    assert len(ids) == len(set(ids)) == 14
