"""Every tier API contract documents the one problem shape and every status the gateway
can answer, from the shared components (openapi/components/problems.yaml)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location(
    "sync_contract_components", ROOT / "scripts" / "sync_contract_components.py"
)
assert _spec is not None and _spec.loader is not None
sync = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sync)

NAMES = [p.stem for p in sync.CONTRACTS]


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


def test_all_seven_api_contracts_are_covered() -> None:
    assert sorted(NAMES) == sorted(
        [
            "customers",
            "orders",
            "inventory",
            "customer-360",
            "order-fulfilment",
            "mobile",
            "partner",
        ]
    )


@pytest.mark.parametrize("path", sync.CONTRACTS, ids=NAMES)
def test_each_contract_carries_the_shared_components_verbatim(path: Path) -> None:
    shared, components = sync.shared(), _load(path)["components"]
    for kind, entries in shared.items():
        for name, value in entries.items():
            assert components[kind][name] == value, f"{path.name}: {kind}.{name} differs"


@pytest.mark.parametrize("path", sync.CONTRACTS, ids=NAMES)
def test_every_operation_documents_what_the_gateway_can_answer(path: Path) -> None:
    for template, item in _load(path)["paths"].items():
        for method, operation in item.items():
            if method not in sync.METHODS:
                continue
            missing = set(sync.expected_statuses(operation)) - set(operation["responses"])
            assert not missing, f"{path.name}: {method.upper()} {template} lacks {missing}"
            if "requestBody" in operation:
                assert {"415", "422"} <= set(operation["responses"])


def test_the_sync_script_leaves_synced_contracts_unchanged(tmp_path: Path) -> None:
    for path in sync.CONTRACTS:
        copy = tmp_path / path.name
        shutil.copy(path, copy)
        assert not sync.sync(copy, sync.shared()), f"{path.name} is not in sync; run the script"


def test_the_sync_script_adds_what_a_contract_lacks(tmp_path: Path) -> None:
    copy = tmp_path / "customers.yaml"
    text = (ROOT / "openapi" / "system" / "customers.yaml").read_text()
    status = "        '429':\n          $ref: '#/components/responses/TooManyRequests'\n"
    copy.write_text(text.replace(status, "", 1))
    assert sync.sync(copy, sync.shared())
    assert copy.read_text() != text  # put back at the end of the block: same document
    assert _load(copy) == _load(ROOT / "openapi" / "system" / "customers.yaml")


def _problem_validator(path: Path) -> Any:
    components = _load(path)["components"]
    schema = {"$ref": "#/components/schemas/Problem", "components": components}
    return jsonschema_rs.Draft202012Validator(schema)


@pytest.mark.parametrize(
    "member",
    [
        {"in": "body", "pointer": "/lines/0/qty", "detail": "x"},
        {"in": "body", "pointer": "", "detail": "x"},
        {"in": "query", "name": "limit", "detail": "x"},
        {"in": "header", "name": "idempotency-key", "detail": "x"},
    ],
)
def test_the_documented_member_format_accepts_each_location(member: dict[str, str]) -> None:
    problem = {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "x",
        "errors": [member],
    }
    assert _problem_validator(sync.CONTRACTS[0]).is_valid(problem)


@pytest.mark.parametrize(
    "member",
    [
        {"in": "body", "detail": "no pointer"},
        {"in": "query", "detail": "no name"},
        {"pointer": "/lines/0/qty", "detail": "the old shape: no location"},
        {"in": "query", "parameter": "limit", "detail": "the old shape"},
        {"in": "cookie", "name": "c", "detail": "not a checked location"},
    ],
)
def test_the_documented_member_format_refuses_other_shapes(member: dict[str, str]) -> None:
    problem = {
        "type": "about:blank",
        "title": "Bad Request",
        "status": 400,
        "detail": "x",
        "errors": [member],
    }
    assert not _problem_validator(sync.CONTRACTS[0]).is_valid(problem)
