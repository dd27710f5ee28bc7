"""Schema rules of `tiergate diff`, each in both directions: a request schema may
widen, a response schema may narrow; anything else breaks a client."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.catalogue.diff import diff_contracts

S: dict[str, Any] = {"type": "string"}


def document(request: Any, response: Any) -> dict:
    return {
        "openapi": "3.1.0",
        "info": {"title": "Things", "version": "1.0.0"},
        "paths": {
            "/things": {
                "post": {
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": request}},
                    },
                    "responses": {
                        "200": {
                            "description": "The thing",
                            "content": {"application/json": {"schema": response}},
                        }
                    },
                }
            }
        },
    }


def diff(old: Any, new: Any, *, request: bool) -> list[tuple[bool, str]]:
    """(breaking, message) for OLD → NEW placed in the request body or the response."""
    pair = (document(old, S), document(new, S)) if request else (document(S, old), document(S, new))
    return [(c.breaking, c.message) for c in diff_contracts(*pair)]


def obj(**properties: Any) -> dict:
    return {"type": "object", "properties": properties}


NARROW_HEX = ({**S, "pattern": "^[0-9a-f]{1,15}$"}, {**S, "pattern": "^[0-9a-f]{1,8}$"})

# (old, new, what the request side reports, what the response side reports)
RULES = {
    "pattern narrowed": (
        *NARROW_HEX,
        [(True, "request body: pattern narrowed: '^[0-9a-f]{1,15}$' to '^[0-9a-f]{1,8}$'")],
        [(False, "response 200: pattern narrowed: '^[0-9a-f]{1,15}$' to '^[0-9a-f]{1,8}$'")],
    ),
    "pattern widened": (
        *reversed(NARROW_HEX),
        [(False, "request body: pattern widened: '^[0-9a-f]{1,8}$' to '^[0-9a-f]{1,15}$'")],
        [(True, "response 200: pattern widened: '^[0-9a-f]{1,8}$' to '^[0-9a-f]{1,15}$'")],
    ),
    "pattern added": (
        S,
        {**S, "pattern": "^ord_"},
        [(True, "request body: pattern '^ord_' added")],
        [(False, "response 200: pattern '^ord_' added")],
    ),
    "pattern removed": (
        {**S, "pattern": "^ord_"},
        S,
        [(False, "request body: pattern '^ord_' removed")],
        [(True, "response 200: pattern '^ord_' removed")],
    ),
    "pattern rewritten to other strings": (
        {**S, "pattern": "^ord_[0-9]+$"},
        {**S, "pattern": "^ORD-[0-9]+$"},
        [
            (
                True,
                "request body: pattern changed (neither accepts all the other does): "
                "'^ord_[0-9]+$' to '^ORD-[0-9]+$'",
            )
        ],
        [
            (
                True,
                "response 200: pattern changed (neither accepts all the other does): "
                "'^ord_[0-9]+$' to '^ORD-[0-9]+$'",
            )
        ],
    ),
    "pattern rewritten, same strings": (
        {**S, "pattern": "^[0-9]+$"},
        {**S, "pattern": "^\\d+$"},
        [(False, "request body: pattern rewritten: '^[0-9]+$' to '^\\\\d+$'")],
        [(False, "response 200: pattern rewritten: '^[0-9]+$' to '^\\\\d+$'")],
    ),
    "format added": (
        S,
        {**S, "format": "uuid"},
        [(True, "request body: format 'uuid' added")],
        [(False, "response 200: format 'uuid' added")],
    ),
    "format removed": (
        {**S, "format": "date"},
        S,
        [(False, "request body: format 'date' removed")],
        [(True, "response 200: format 'date' removed")],
    ),
    "format changed": (
        {**S, "format": "date"},
        {**S, "format": "date-time"},
        [(True, "request body: format changed from 'date' to 'date-time'")],
        [(True, "response 200: format changed from 'date' to 'date-time'")],
    ),
    "format widened": (
        {"type": "integer", "format": "int32"},
        {"type": "integer", "format": "int64"},
        [(False, "request body: format changed from 'int32' to 'int64'")],
        [(True, "response 200: format changed from 'int32' to 'int64'")],
    ),
    "minimum raised": (
        {"type": "integer", "minimum": 1},
        {"type": "integer", "minimum": 5},
        [(True, "request body: minimum tightened to 5")],
        [(False, "response 200: minimum tightened to 5")],
    ),
    "maxLength raised": (
        {**S, "maxLength": 10},
        {**S, "maxLength": 20},
        [(False, "request body: maxLength relaxed to 20")],
        [(True, "response 200: maxLength relaxed to 20")],
    ),
    "minItems added": (
        {"type": "array"},
        {"type": "array", "minItems": 1},
        [(True, "request body: minItems tightened to 1")],
        [(False, "response 200: minItems tightened to 1")],
    ),
    "maximum removed": (
        {"type": "integer", "maximum": 100},
        {"type": "integer"},
        [(False, "request body: maximum 100 removed")],
        [(True, "response 200: maximum 100 removed")],
    ),
    "OpenAPI 3.0 exclusiveMinimum flag set": (
        {"type": "number", "minimum": 0, "exclusiveMinimum": False},
        {"type": "number", "minimum": 0, "exclusiveMinimum": True},
        [(True, "request body: exclusiveMinimum tightened to True")],
        [(False, "response 200: exclusiveMinimum tightened to True")],
    ),
    "multipleOf coarser": (
        {"type": "integer", "multipleOf": 2},
        {"type": "integer", "multipleOf": 4},
        [(True, "request body: multipleOf changed from 2 to 4")],
        [(False, "response 200: multipleOf changed from 2 to 4")],
    ),
    "enum value swapped": (
        {**S, "enum": ["a", "b"]},
        {**S, "enum": ["a", "c"]},
        [
            (True, "request body: enum values ['b'] no longer accepted"),
            (False, "request body: enum values ['c'] now accepted"),
        ],
        [
            (True, "response 200: may now return enum values ['c']"),
            (False, "response 200: enum values ['b'] no longer returned"),
        ],
    ),
    "enum added": (
        S,
        {**S, "enum": ["a"]},
        [(True, "request body: now limited to ['a']")],
        [(False, "response 200: now limited to ['a']")],
    ),
    "const dropped": (
        {**S, "const": "a"},
        S,
        [(False, "request body: no longer limited to listed values")],
        [(True, "response 200: no longer limited to listed values")],
    ),
    "3.1 type list gains null": (
        S,
        {"type": ["string", "null"]},
        [(False, "request body: now accepts null")],
        [(True, "response 200: may now be null")],
    ),
    "3.0 nullable dropped": (
        {**S, "nullable": True},
        S,
        [(True, "request body: no longer accepts null")],
        [(False, "response 200: no longer null")],
    ),
    "null branch of anyOf dropped": (
        {"anyOf": [S, {"type": "null"}]},
        {"anyOf": [S]},
        [(True, "request body: no longer accepts null")],
        [(False, "response 200: no longer null")],
    ),
    "type narrowed": (
        {"type": ["string", "integer"]},
        S,
        [(True, "request body: type changed from string/integer to string")],
        [(False, "response 200: type changed from string/integer to string")],
    ),
    "property became readOnly": (
        obj(id=S, name=S),
        obj(id={**S, "readOnly": True}, name=S),
        [(True, "request body: property 'id' became readOnly (no longer accepted in requests)")],
        [(False, "response 200: property 'id' became readOnly")],
    ),
    "property became writeOnly": (
        obj(password=S),
        obj(password={**S, "writeOnly": True}),
        [(False, "request body: property 'password' became writeOnly")],
        [(True, "response 200: property 'password' became writeOnly (no longer returned)")],
    ),
    "property no longer readOnly": (
        obj(id={**S, "readOnly": True}),
        obj(id=S),
        [(False, "request body: property 'id' no longer readOnly (now accepted in requests)")],
        [(False, "response 200: property 'id' no longer readOnly")],
    ),
    "property became required": (
        obj(note=S),
        {**obj(note=S), "required": ["note"]},
        [(True, "request body: property 'note' is now required")],
        [(False, "response 200: property 'note' now always present")],
    ),
    "property no longer required": (
        {**obj(note=S), "required": ["note"]},
        obj(note=S),
        [(False, "request body: property 'note' no longer required")],
        [(True, "response 200: property 'note' no longer always present")],
    ),
    "property removed": (
        obj(note=S, id=S),
        obj(id=S),
        [(False, "request body: property 'note' removed (ignored if sent)")],
        [(True, "response 200: property 'note' removed")],
    ),
    "property removed from a closed object": (
        {**obj(note=S, id=S), "additionalProperties": False},
        {**obj(id=S), "additionalProperties": False},
        [(True, "request body: property 'note' removed and no longer accepted")],
        [(True, "response 200: property 'note' removed")],
    ),
    "optional property added": (
        obj(id=S),
        obj(id=S, note=S),
        [(False, "request body: property 'note' added")],
        [(False, "response 200: property 'note' added")],
    ),
    "nested in allOf and items": (
        {"type": "array", "items": {"allOf": [obj(id=S), obj(code=S)]}},
        {"type": "array", "items": {"allOf": [obj(id=S), obj(code={**S, "maxLength": 3})]}},
        [(True, "request body[].code: maxLength tightened to 3")],
        [(False, "response 200[].code: maxLength tightened to 3")],
    ),
}


@pytest.mark.parametrize("rule", RULES)
def test_schema_rule_in_requests(rule):
    old, new, in_request, _ = RULES[rule]
    assert diff(old, new, request=True) == sorted(in_request, key=lambda c: (not c[0], c[1]))


@pytest.mark.parametrize("rule", RULES)
def test_schema_rule_in_responses(rule):
    old, new, _, in_response = RULES[rule]
    assert diff(old, new, request=False) == sorted(in_response, key=lambda c: (not c[0], c[1]))


def test_readonly_required_property_is_not_required_in_requests():
    """OpenAPI: a readOnly property listed in `required` applies to responses only."""
    old = {**obj(id={**S, "readOnly": True}, name=S), "required": ["name"]}
    new = {**obj(id={**S, "readOnly": True}, name=S), "required": ["name", "id"]}
    assert diff(old, new, request=True) == []
    assert diff(old, new, request=False) == [
        (False, "response 200: property 'id' now always present")
    ]


def test_unchanged_schema_reports_nothing():
    schema = {**obj(id={**S, "pattern": "^[a-z_-]+$", "format": "x"}), "required": ["id"]}
    assert diff(schema, dict(schema), request=True) == []


def test_self_referencing_schemas_terminate():
    def doc(max_length: int) -> dict:
        node = {
            "allOf": [{"$ref": "#/components/schemas/Node"}],
            "type": "object",
            "properties": {
                "name": {**S, "maxLength": max_length},
                "children": {"type": "array", "items": {"$ref": "#/components/schemas/Node"}},
            },
        }
        document_ = document({"$ref": "#/components/schemas/Node"}, S)
        document_["components"] = {"schemas": {"Node": node}}
        return document_

    messages = [c.message for c in diff_contracts(doc(10), doc(5))]
    assert "request body.name: maxLength tightened to 5" in messages
    assert "request body.children[].name: maxLength tightened to 5" in messages
