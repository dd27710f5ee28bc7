"""`tiergate check` reports a contract that drifts from what an in-process API serves."""

import yaml

from gateway.checks import run_checks
from gateway.contracts.drift import check_drift
from gateway.loading import load_config
from tests.support.configs import make_config

CONTRACT = {
    "openapi": "3.1.0",
    "info": {"title": "items", "version": "1"},
    "x-tier": "experience",
    "servers": [{"url": "/experience/items/v1"}],
    "paths": {
        "/items": {
            "get": {"operationId": "listItems", "responses": {"200": {"description": "ok"}}}
        },
        "/items/{id}": {
            "get": {"operationId": "getItem", "responses": {"200": {"description": "ok"}}},
            "put": {"operationId": "putItem", "responses": {"200": {"description": "ok"}}},
        },
    },
}


def test_drift_is_reported_both_ways(tmp_path):
    (tmp_path / "items.yaml").write_text(yaml.safe_dump(CONTRACT))
    api = {
        "name": "items",
        "contract": "items.yaml",
        "upstream": {"targets": ["asgi:tests.contracts.drifting_app:app"]},
    }
    problems = check_drift(make_config(tmp_path, [api]))
    assert problems == [
        "items: the app serves DELETE /items/{}, which contract items.yaml does not document; "
        "add the operation or remove the route",
        "items: contract items.yaml documents PUT /items/{id}, which the app does not serve; "
        "implement it or remove it from the contract",
    ]


def test_the_demo_estate_has_no_drift():
    assert check_drift(load_config("tiergate.yaml", env={})) == []


def test_http_targets_are_left_to_contract_tests(tmp_path):
    (tmp_path / "items.yaml").write_text(yaml.safe_dump(CONTRACT))
    api = {
        "name": "items",
        "contract": "items.yaml",
        "upstream": {"targets": ["http://127.0.0.1:9"]},
    }
    assert [p for p in run_checks(make_config(tmp_path, [api])) if "serves" in p] == []
