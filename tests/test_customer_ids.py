"""One customer-id format everywhere: the gateway's (users, demo users, the admin API)
is the one the APIs and their contracts use, so every account an API serves can have a
user, and nothing the gateway accepts is refused one tier down."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from apis._shared.values import CUSTOMER_ID_PATTERN as APIS_PATTERN
from gateway.config.models import CUSTOMER_ID_PATTERN

ROOT = Path(__file__).resolve().parents[1]


def _customer_id_patterns(node: object, found: list[str]) -> list[str]:
    if isinstance(node, dict):
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.startswith("^cus_"):
            found.append(pattern)
        for value in node.values():
            _customer_id_patterns(value, found)
    elif isinstance(node, list):
        for value in node:
            _customer_id_patterns(value, found)
    return found


def test_the_gateway_and_the_apis_share_one_customer_id_pattern():
    assert CUSTOMER_ID_PATTERN == APIS_PATTERN


def test_every_contract_writes_customer_ids_the_same_way():
    contracts = sorted((ROOT / "openapi").rglob("*.yaml"))
    seen = {}
    for contract in contracts:
        for pattern in _customer_id_patterns(yaml.safe_load(contract.read_text()), []):
            seen.setdefault(pattern, []).append(contract.relative_to(ROOT).as_posix())
    assert set(seen) == {CUSTOMER_ID_PATTERN}, seen
    assert "openapi/gateway/admin.yaml" in seen[CUSTOMER_ID_PATTERN]


def test_the_pattern_takes_what_the_apis_issue_and_refuses_the_rest():
    pattern = re.compile(CUSTOMER_ID_PATTERN)
    assert all(pattern.fullmatch(i) for i in ("cus_0001", "cus_abcd", "cus_" + "9" * 32))
    assert not any(
        pattern.fullmatch(i) for i in ("cus_1", "CUS_0001", "cus_0001\n", "cus_" + "a" * 33)
    )
