"""`tiergate diff` on real pairs of contract versions."""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gateway.catalogue.diff import diff_contracts

BASE = yaml.safe_load("""
openapi: 3.1.0
info: {title: Orders, version: 1.0.0}
paths:
  /orders:
    get:
      operationId: listOrders
      parameters:
        - {name: status, in: query, schema: {type: string, enum: [placed, cancelled]}}
        - {name: limit, in: query, schema: {type: integer, maximum: 100}}
      responses:
        "200":
          description: Orders
          content:
            application/json:
              schema: {$ref: "#/components/schemas/OrderPage"}
    post:
      operationId: createOrder
      requestBody:
        required: true
        content:
          application/json:
            schema: {$ref: "#/components/schemas/NewOrder"}
      responses:
        "201":
          description: Created
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Order"}
        "409": {description: Conflict}
  /orders/{order_id}:
    get:
      operationId: getOrder
      parameters:
        - {name: order_id, in: path, required: true, schema: {type: string}}
      responses:
        "200":
          description: Order
          content:
            application/json:
              schema: {$ref: "#/components/schemas/Order"}
components:
  schemas:
    NewOrder:
      type: object
      required: [customer_id]
      properties:
        customer_id: {type: string}
        note: {type: string, maxLength: 200}
        quantity: {type: number}
    Order:
      type: object
      required: [id, status, total]
      properties:
        id: {type: string}
        status: {type: string, enum: [placed, cancelled]}
        total: {type: string}
    OrderPage:
      type: object
      properties:
        items: {type: array, items: {$ref: "#/components/schemas/Order"}}
""")


def changed(mutate) -> dict:
    doc = copy.deepcopy(BASE)
    mutate(doc)
    return doc


def breaking(doc) -> list[str]:
    return [c.message for c in diff_contracts(BASE, doc) if c.breaking]


def test_identical_contracts_have_no_changes():
    assert diff_contracts(BASE, copy.deepcopy(BASE)) == []


def test_removed_operation_is_breaking():
    doc = changed(lambda d: d["paths"]["/orders"].pop("post"))
    assert breaking(doc) == ["operation removed"]


def test_renamed_path_parameter_is_not_a_change():
    def rename(d):
        item = d["paths"].pop("/orders/{order_id}")
        item["get"]["parameters"][0]["name"] = "id"
        d["paths"]["/orders/{id}"] = item

    assert diff_contracts(BASE, changed(rename)) == []


def test_new_required_query_parameter_is_breaking_optional_is_not():
    def add(required):
        def mutate(d):
            d["paths"]["/orders"]["get"]["parameters"].append(
                {
                    "name": "region",
                    "in": "query",
                    "required": required,
                    "schema": {"type": "string"},
                }
            )

        return changed(mutate)

    assert breaking(add(True)) == ["new required query parameter 'region'"]
    assert breaking(add(False)) == []


def test_new_required_body_field_is_breaking():
    doc = changed(lambda d: d["components"]["schemas"]["NewOrder"]["required"].append("note"))
    assert breaking(doc) == ["request body: property 'note' is now required"]


def test_narrowed_request_types_are_breaking():
    def narrow(d):
        props = d["components"]["schemas"]["NewOrder"]["properties"]
        props["quantity"]["type"] = "integer"
        props["note"]["maxLength"] = 50
        d["paths"]["/orders"]["get"]["parameters"][0]["schema"]["enum"] = ["placed"]

    assert sorted(breaking(changed(narrow))) == sorted(
        [
            "request body.quantity: type changed from number to integer",
            "request body.note: maxLength tightened to 50",
            "query parameter 'status': enum values ['cancelled'] no longer accepted",
        ]
    )


def test_widened_request_types_are_compatible():
    def widen(d):
        props = d["components"]["schemas"]["NewOrder"]["properties"]
        props["note"]["maxLength"] = 500
        props["customer_id"]["type"] = ["string", "null"]
        d["paths"]["/orders"]["get"]["parameters"][1]["schema"]["maximum"] = 500

    assert breaking(changed(widen)) == []


def test_response_changes():
    def mutate(d):
        order = d["components"]["schemas"]["Order"]
        order["properties"].pop("total")
        order["required"].remove("total")
        order["properties"]["currency"] = {"type": "string"}
        del d["paths"]["/orders"]["post"]["responses"]["409"]

    messages = breaking(changed(mutate))
    assert "response 409 removed" in messages
    assert "response 201: property 'total' removed" in messages
    assert "response 200[]: property 'total' removed" not in messages
    assert "response 200.items[]: property 'total' removed" in messages
    compatible = [c.message for c in diff_contracts(BASE, changed(mutate)) if not c.breaking]
    assert "response 201: property 'currency' added" in compatible


def test_response_enum_widening_is_breaking():
    doc = changed(
        lambda d: d["components"]["schemas"]["Order"]["properties"]["status"]["enum"].append("lost")
    )
    assert "response 200.status: may now return enum values ['lost']" in breaking(doc)


def test_added_operation_is_compatible():
    doc = changed(
        lambda d: d["paths"]["/orders/{order_id}"].setdefault(
            "delete", {"operationId": "cancel", "responses": {"204": {"description": "gone"}}}
        )
    )
    changes = diff_contracts(BASE, doc)
    assert [(c.breaking, c.message) for c in changes] == [(False, "operation added")]


def run_cli(tmp_path: Path, new: dict, *extra: str) -> subprocess.CompletedProcess:
    old_file, new_file = tmp_path / "old.yaml", tmp_path / "new.yaml"
    old_file.write_text(yaml.safe_dump(BASE))
    new_file.write_text(yaml.safe_dump(new))
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", "diff", str(old_file), str(new_file), *extra],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )


def test_cli_exit_codes_and_dependants(tmp_path, estate):
    result = run_cli(
        tmp_path,
        changed(lambda d: d["paths"].pop("/orders/{order_id}")),
        "--config",
        str(estate),
        "--api",
        "stock",
    )
    assert result.returncode == 1, result.stderr
    assert "BREAKING  GET /orders/{order_id}: operation removed" in result.stdout
    assert "APIs that depend on it: orders-proc, shop" in result.stdout
    result = run_cli(tmp_path, copy.deepcopy(BASE))
    assert result.returncode == 0
    assert "no breaking changes" in result.stdout


@pytest.mark.parametrize("content", ["not: [valid", "just: a mapping"])
def test_cli_refuses_what_is_not_a_contract(tmp_path, content):
    bad = tmp_path / "bad.yaml"
    bad.write_text(content)
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump(BASE))
    result = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "diff", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    assert "bad.yaml" in result.stderr and "Traceback" not in result.stderr
