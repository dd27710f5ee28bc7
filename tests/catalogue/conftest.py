from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gateway.loading import load_config
from gateway.stack import build_gateway
from tests.support.browser import chromium
from tests.support.servers import UvicornThread, serve_asgi

ADMIN_TOKEN = "catalogue-admin-token-for-tests"
READER_TOKEN = "catalogue-reader-token-41d2"
READER_TOKEN_SHA256 = hashlib.sha256(READER_TOKEN.encode()).hexdigest()
INTERNAL_HOST = "stock-db.internal.example"


def contract(title: str, tier: str, paths: dict, security: dict | None = None) -> dict:
    doc = {
        "openapi": "3.1.0",
        "info": {"title": title, "version": "1.0.0", "description": f"{title} for tests."},
        "x-tier": tier,
        "servers": [{"url": f"http://{INTERNAL_HOST}:9000"}],
        "paths": paths,
    }
    if security:
        doc["components"] = {"securitySchemes": security}
    return doc


ITEMS = {
    "/items": {
        "get": {
            "operationId": "listItems",
            "summary": "List items",
            "responses": {
                "200": {
                    "description": "Items",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    }
}


def write_estate(root: Path) -> Path:
    (root / "openapi").mkdir()
    docs = {
        "shop": contract("Shop", "experience", ITEMS),
        "legacy": contract(
            "Legacy shop",
            "experience",
            ITEMS,
            {"key": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
        ),
        "orders-proc": contract("Order processing", "process", ITEMS),
        "stock": contract("Stock", "system", ITEMS),
    }
    for name, doc in docs.items():
        (root / "openapi" / f"{name}.yaml").write_text(yaml.safe_dump(doc))
    upstream = "asgi:tests.catalogue.estate_app:app"
    config = {
        "access_log": False,
        "admin_token": ADMIN_TOKEN,
        # A read-only named token (the catalogue team's): sees internal APIs as admin does.
        "admin_tokens": {"catalogue": {"token_sha256": READER_TOKEN_SHA256}},
        "plans": {"free": {"limits": ["60/minute", "1000/day"]}},
        "apis": [
            {
                "name": "shop",
                "tier": "experience",
                "contract": "openapi/shop.yaml",
                "owner": "web-team",
                "tags": ["retail"],
                "description": "Browse the shop.",
                "depends_on": ["orders-proc"],
                "upstream": {"targets": [upstream]},
            },
            {
                "name": "legacy",
                "tier": "experience",
                "contract": "openapi/legacy.yaml",
                "owner": "partner-team",
                "tags": ["b2b"],
                "lifecycle": "deprecated",
                "deprecated_since": "2026-01-15",
                "sunset": "2027-06-30",
                "upstream": {"targets": [upstream]},
            },
            {
                "name": "orders-proc",
                "tier": "process",
                "contract": "openapi/orders-proc.yaml",
                "owner": "ops-team",
                "depends_on": ["stock"],
                "upstream": {"targets": [upstream]},
            },
            {
                "name": "stock",
                "tier": "system",
                "contract": "openapi/stock.yaml",
                "owner": "ops-team",
                "upstream": {"targets": [f"http://{INTERNAL_HOST}:9000"]},
            },
        ],
    }
    path = root / "tiergate.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def estate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_estate(tmp_path_factory.mktemp("estate"))


@pytest.fixture(scope="module")
def gateway_server(estate: Path) -> Iterator[UvicornThread]:
    with serve_asgi(build_gateway(load_config(estate, env={}))) as server:
        yield server


ARTIFACTS = Path(os.environ.get("TIERGATE_ARTIFACTS", "test-artifacts")) / "catalogue"


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """Debian's chromium under Playwright, one per test module."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        yield browser
