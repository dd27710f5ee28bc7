"""`tiergate init`: a working config for your own API, written or extended, validated
before anything is written; contracts copied or fetched over a real socket."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gateway.checks import run_checks
from gateway.config import ConfigError, load_config
from gateway.init import InitError, init_api
from tests.support.servers import serve_asgi

CONTRACT = {
    "openapi": "3.1.0",
    "info": {"title": "Stock", "version": "2.0.0"},
    "servers": [{"url": "https://stock.internal"}],
    "paths": {
        "/items/{sku}": {
            "get": {
                "operationId": "getItem",
                "parameters": [
                    {"name": "sku", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
                "responses": {"200": {"description": "The item"}},
            }
        }
    },
}


def _other(operation_id: str) -> dict:
    return {
        **CONTRACT,
        "paths": {
            "/x": {"get": {"operationId": operation_id, "responses": {"200": {"description": "x"}}}}
        },
    }


async def _openapi(request):
    return JSONResponse(CONTRACT)


async def _not_openapi(request):
    return Response("<html>hello</html>", media_type="text/html")


upstream_app = Starlette(
    routes=[Route("/openapi.json", _openapi), Route("/docs/openapi.json", _not_openapi)]
)


@pytest.fixture(scope="module")
def upstream():
    with serve_asgi(upstream_app) as server:
        yield server.url


def test_fresh_folder_gets_a_config_that_checks(tmp_path, upstream):
    config = tmp_path / "tiergate.yaml"
    written = init_api(config, "stock", "system", upstream)
    assert written["action"] == "wrote" and written["path"] == "/system/stock/v1"
    loaded = load_config(config, env={})
    assert run_checks(loaded) == []
    api = loaded.api("stock")
    assert api.contract == "openapi/stock.json"
    assert [str(t) for t in api.upstream.targets] == [upstream]
    assert {"jwt", "tier-guard", "rate-limit", "authorize"} <= set(api.policy_configs)
    assert loaded.registry_url.startswith("sqlite:///")
    assert loaded.limits_storage == "memory://"
    assert "free" in loaded.plans
    # fetched from the upstream, with the tier and the gateway's base path added
    stored = json.loads((tmp_path / "openapi" / "stock.json").read_text())
    assert stored["x-tier"] == "system"
    assert stored["servers"][0]["url"] == "/system/stock/v1"
    assert stored["servers"][1] == {"url": "https://stock.internal"}  # kept
    assert stored["paths"] == CONTRACT["paths"]


def test_run_again_adds_an_api_and_keeps_the_file(tmp_path, upstream):
    config = tmp_path / "tiergate.yaml"
    init_api(config, "stock", "system", upstream)
    first = config.read_text()
    source = tmp_path / "shop-contract.yml"
    source.write_text(yaml.safe_dump(_other("listShop")))
    written = init_api(config, "shop", "experience", "http://127.0.0.1:5001", str(source))
    assert written["action"] == "updated"
    assert config.read_text().startswith(first)  # comments and the first API untouched
    loaded = load_config(config, env={})
    assert [a.name for a in loaded.apis] == ["stock", "shop"]
    assert loaded.api("shop").contract == "openapi/shop.yaml"
    assert (
        yaml.safe_load((tmp_path / "openapi" / "shop.yaml").read_text())["x-tier"] == "experience"
    )
    assert run_checks(loaded) == []


def test_adds_to_a_config_it_did_not_write(tmp_path):
    config = tmp_path / "tiergate.yaml"
    config.write_text("apis: []\nplans:\n  free: {limits: ['10/minute']}\n")
    source = tmp_path / "c.json"
    source.write_text(json.dumps(CONTRACT))
    init_api(config, "stock", "system", "http://127.0.0.1:5002", str(source))
    loaded = load_config(config, env={})
    assert [a.name for a in loaded.apis] == ["stock"]
    assert loaded.plans["free"].limits == ["10/minute"]


def test_refusals_write_nothing(tmp_path, upstream):
    config = tmp_path / "tiergate.yaml"
    init_api(config, "stock", "system", upstream)
    before = config.read_text()
    contracts = sorted(p.name for p in (tmp_path / "openapi").iterdir())
    with pytest.raises(InitError, match="API 'stock' is already in"):
        init_api(config, "stock", "system", upstream)
    with pytest.raises(InitError, match="is not an OpenAPI 3 document"):
        init_api(config, "web", "experience", upstream, upstream + "/docs/openapi.json")
    with pytest.raises(InitError, match=r"cannot fetch the contract from .*status 404"):
        init_api(config, "web", "experience", upstream, upstream + "/missing.json")
    with pytest.raises(
        InitError, match=re.escape(f"cannot read the contract {tmp_path / 'nope.yaml'}")
    ):
        init_api(config, "web", "experience", upstream, str(tmp_path / "nope.yaml"))
    with pytest.raises(ConfigError, match="--api: String should match pattern"):
        init_api(config, "Web Site", "experience", upstream)
    with pytest.raises(ConfigError, match="--upstream: 'ftp://x' is not a valid target"):
        init_api(config, "web", "experience", "ftp://x")
    assert config.read_text() == before
    assert sorted(p.name for p in (tmp_path / "openapi").iterdir()) == contracts


def test_a_config_without_plans_or_apis_list_is_refused(tmp_path, upstream):
    config = tmp_path / "tiergate.yaml"
    config.write_text("apis: {}\n")
    with pytest.raises(InitError, match="no list of apis"):
        init_api(config, "stock", "system", upstream)
    config.write_text("listeners: {}\n")
    with pytest.raises(InitError, match="it has no plans"):
        init_api(config, "stock", "system", upstream)
    assert config.read_text() == "listeners: {}\n"
