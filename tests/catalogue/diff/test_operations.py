"""`tiergate diff` on real pairs of contract versions: operations, parameters,
bodies, responses and their headers."""

from __future__ import annotations

import copy

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


def test_removed_parameter_is_breaking():
    doc = changed(lambda d: d["paths"]["/orders"]["get"]["parameters"].pop(0))
    assert breaking(doc) == [
        "query parameter 'status' removed (clients that send it lose its effect)"
    ]


def test_parameter_that_became_optional_is_listed_as_compatible():
    doc = changed(
        lambda d: d["paths"]["/orders/{order_id}"]["get"]["parameters"][0].update(required=False)
    )
    assert [(c.breaking, c.message) for c in diff_contracts(BASE, doc)] == [
        (False, "path parameter 'order_id' became optional")
    ]


def test_request_body_removed_is_breaking_and_optional_is_compatible():
    assert breaking(changed(lambda d: d["paths"]["/orders"]["post"].pop("requestBody"))) == [
        "request body removed"
    ]
    optional = changed(
        lambda d: d["paths"]["/orders"]["post"]["requestBody"].update(required=False)
    )
    assert [(c.breaking, c.message) for c in diff_contracts(BASE, optional)] == [
        (False, "request body became optional")
    ]


def with_header(d: dict, name: str, header: dict) -> None:
    d["paths"]["/orders"]["post"]["responses"]["201"]["headers"] = {name: header}


def test_response_headers():
    location = {"required": True, "schema": {"type": "string"}}
    old = changed(lambda d: with_header(d, "Location", location))
    assert [(c.breaking, c.message) for c in diff_contracts(BASE, old)] == [
        (False, "response 201 header 'location' added")
    ]
    assert [(c.breaking, c.message) for c in diff_contracts(old, BASE)] == [
        (True, "response 201 header 'location' removed")
    ]
    optional = changed(lambda d: with_header(d, "location", {"schema": {"type": "string"}}))
    assert [(c.breaking, c.message) for c in diff_contracts(old, optional)] == [
        (True, "response 201 header 'location' no longer always sent")
    ]
    typed = {**location, "schema": {"type": "string", "format": "uri"}}
    widened = changed(lambda d: with_header(d, "LOCATION", typed))
    assert [(c.breaking, c.message) for c in diff_contracts(widened, old)] == [
        (True, "response 201 header 'location': format 'uri' removed")
    ]


def test_deprecation_is_listed_as_compatible():
    doc = changed(lambda d: d["paths"]["/orders"]["get"].update(deprecated=True))
    assert [(c.breaking, c.message) for c in diff_contracts(BASE, doc)] == [
        (False, "operation deprecated")
    ]
