"""Security rules of `tiergate diff`: a client that got in before must still get in."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.catalogue.diff import diff_contracts

SCHEMES = {
    "oauth": {
        "type": "oauth2",
        "flows": {"clientCredentials": {"tokenUrl": "/oauth/token", "scopes": {}}},
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def document(security: Any, root: Any = None, schemes: dict | None = None) -> dict:
    operation: dict = {"responses": {"200": {"description": "Orders"}}}
    if security is not None:
        operation["security"] = security
    doc: dict = {
        "openapi": "3.1.0",
        "info": {"title": "Orders", "version": "1.0.0"},
        "paths": {"/orders": {"get": operation}},
        "components": {"securitySchemes": schemes or SCHEMES},
    }
    if root is not None:
        doc["security"] = root
    return doc


def diff(old: dict, new: dict) -> list[tuple[bool, str]]:
    return [(c.breaking, c.message) for c in diff_contracts(old, new)]


READ = [{"oauth": ["orders:read"]}]

CASES = {
    "added scope": (
        READ,
        [{"oauth": ["orders:read", "orders:write"]}],
        [(True, "security oauth[orders:read] now needs scope(s) orders:write")],
    ),
    "removed scope": (
        [{"oauth": ["orders:read", "orders:write"]}],
        READ,
        [(False, "security oauth[orders:read orders:write] no longer needs scope(s) orders:write")],
    ),
    "removed alternative": (
        [*READ, {"apiKey": []}],
        READ,
        [(True, "security apiKey[] no longer accepted")],
    ),
    "added alternative": (
        READ,
        [*READ, {"apiKey": []}],
        [(False, "security apiKey[] added")],
    ),
    "second scheme required": (
        READ,
        [{"oauth": ["orders:read"], "apiKey": []}],
        [
            (True, "security oauth[orders:read] no longer accepted"),
            (False, "security apiKey[] + oauth[orders:read] added"),
        ],
    ),
    "anonymous access removed": (
        [],
        READ,
        [
            (True, "security anonymous access no longer accepted"),
            (False, "security oauth[orders:read] added"),
        ],
    ),
    "anonymous access added": (
        READ,
        [{}, *READ],
        [(False, "security anonymous access added")],
    ),
    "alternative removed but another asks no more": (
        [{"oauth": ["orders:read", "orders:write"]}, *READ],
        READ,
        [(False, "security oauth[orders:read orders:write] removed (still covered)")],
    ),
    "reordered alternatives": ([{"apiKey": []}, *READ], [*READ, {"apiKey": []}], []),
}


@pytest.mark.parametrize("case", CASES)
def test_operation_security(case):
    old, new, expected = CASES[case]
    assert diff(document(old), document(new)) == expected


def test_document_security_applies_where_an_operation_has_none():
    old = document(None, root=READ)
    new = document(None, root=[{"oauth": ["orders:read", "admin"]}])
    assert diff(old, new) == [(True, "security oauth[orders:read] now needs scope(s) admin")]


def test_operation_security_overrides_the_document_one():
    old = document(None, root=READ)
    new = document([], root=READ)  # `security: []` on the operation: anonymous
    assert diff(old, new) == [
        (False, "security anonymous access added"),
        (False, "security oauth[orders:read] removed (still covered)"),
    ]


def test_changed_scheme_is_breaking():
    renamed = {**SCHEMES, "apiKey": {"type": "apiKey", "in": "header", "name": "X-Partner-Key"}}
    found = diff(document([{"apiKey": []}]), document([{"apiKey": []}], schemes=renamed))
    assert found == [(True, "security scheme 'apiKey' changed (name)")]
    assert diff_contracts(document(READ), document(READ)) == []
