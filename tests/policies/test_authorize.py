"""The authorize policy: the contract's security alternatives, decided on verified credentials,
over a real uvicorn gateway with the built-in issuer and real keys in the registry."""

from __future__ import annotations

import re
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
import yaml

from gateway.config.errors import ConfigError
from gateway.policies import authorize
from tests.support.auth_estate import identity_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.tokens import BUILTIN_ISSUER, claims, sign
from tests.support.upstreams import echo

OK = {"responses": {"200": {"description": "ok"}}}
CONTRACT = {
    "openapi": "3.1.0",
    "info": {"title": "shop", "version": "1"},
    "paths": {
        # a token with shop:read, or a key granted shop:read
        "/x": {
            "get": {
                **OK,
                "operationId": "getX",
                "security": [{"oauth": ["shop:read"]}, {"key": ["shop:read"]}],
            },
            # tokens only
            "post": {**OK, "operationId": "postX", "security": [{"oauth": ["shop:write"]}]},
        },
        "/items/{id}": {
            "get": {
                **OK,
                "operationId": "getItem",
                "security": [{"key": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": True, "schema": {"type": "string"}}
                ],
            }
        },
        "/public": {"get": {**OK, "security": []}},
        # both at once: a token AND a key
        "/both": {"get": {**OK, "security": [{"oauth": [], "key": []}]}},
    },
    "components": {
        "securitySchemes": {
            "oauth": {
                "type": "oauth2",
                "flows": {
                    "clientCredentials": {
                        "tokenUrl": "https://gateway.test/oauth/token",
                        "scopes": {"shop:read": "read", "shop:write": "write"},
                    }
                },
            },
            "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        }
    },
}
BASE = "/experience/shop/v1"


@pytest.fixture(scope="module")
def shop(tmp_path_factory) -> Iterator[SimpleNamespace]:
    tmp_path = tmp_path_factory.mktemp("authorize")
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(CONTRACT))
    api = {
        "name": "shop",
        "contract": "shop.yaml",
        "policies": {"jwt": {"operation_scopes": {"postX": ["shop:audit"]}}, "api-key": {}},
    }
    with (
        serve_asgi(echo) as upstream,
        identity_gateway(tmp_path, [{**api, "upstream": {"targets": [upstream.url]}}]) as gw,
    ):

        def key(scopes=(), operations=None, apis=("shop",)) -> str:
            async def create(registry):
                _, plaintext = await registry.create_api_key(
                    "acme", "free", apis, None, scopes, operations
                )
                return plaintext

            return gw.registry(create)

        def call(method: str, path: str, token: str | None = None, api_key: str | None = None):
            headers = {}
            if token is not None:
                headers["authorization"] = f"Bearer {token}"
            if api_key is not None:
                headers["x-api-key"] = api_key
            return httpx.request(method, f"{gw.url}{BASE}{path}", headers=headers, timeout=10)

        yield SimpleNamespace(
            call=call,
            key=key,
            token=lambda scope: sign(gw.key, claims(BUILTIN_ISSUER, scope=scope)),
        )


def challenges(response: httpx.Response) -> list[str]:
    return response.headers.get_list("www-authenticate")


def test_no_credentials_gets_one_challenge_per_accepted_scheme(shop):
    r = shop.call("GET", "/x")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert challenges(r) == [
        'Bearer realm="tiergate", scope="shop:read"',
        'APIKey realm="tiergate", header="X-API-Key"',
    ]
    needs = f"{authorize.NEEDS['bearer']} or {authorize.NEEDS['apiKey']}"
    assert r.json()["detail"] == authorize.NO_CREDENTIALS.format(needs=needs)


def test_a_bad_token_gets_error_in_the_bearer_challenge(shop):
    r = shop.call("GET", "/x", token="not.a.jwt")
    assert r.status_code == 401
    bearer, api_key = challenges(r)
    assert 'error="invalid_token"' in bearer and 'scope="shop:read"' in bearer
    assert api_key.startswith("APIKey ")


def test_either_alternative_lets_the_request_in(shop):
    assert shop.call("GET", "/x", token=shop.token("shop:read")).status_code == 200
    assert shop.call("GET", "/x", api_key=shop.key(["shop:read"])).status_code == 200


def test_a_key_is_checked_like_a_token_for_scopes(shop):
    r = shop.call("GET", "/x", api_key=shop.key())
    assert r.status_code == 403
    assert r.json()["detail"] == authorize.KEY_SCOPES.format(scopes="shop:read")


def test_a_key_satisfies_only_operations_that_list_an_api_key_scheme(shop):
    r = shop.call("POST", "/x", api_key=shop.key(["shop:read", "shop:write"]))
    assert r.status_code == 401
    assert challenges(r) == ['Bearer realm="tiergate", scope="shop:audit shop:write"']
    assert "does not accept API keys" in r.json()["detail"]


def test_config_narrows_the_contract_scopes(shop):
    r = shop.call("POST", "/x", token=shop.token("shop:write"))
    assert r.status_code == 403
    assert 'error="insufficient_scope"' in challenges(r)[0]
    assert r.json()["required_scopes"] == ["shop:audit", "shop:write"]
    assert shop.call("POST", "/x", token=shop.token("shop:write shop:audit")).status_code == 200


def test_a_token_is_not_accepted_where_only_keys_are(shop):
    r = shop.call("GET", "/items/1", token=shop.token("shop:read"))
    assert r.status_code == 401
    assert challenges(r) == ['APIKey realm="tiergate", header="X-API-Key"']


def test_key_operation_grants(shop):
    limited = shop.key(["shop:read"], operations=["getItem"])
    assert shop.call("GET", "/items/1", api_key=limited).status_code == 200
    r = shop.call("GET", "/x", api_key=limited)
    assert r.status_code == 403
    assert r.json()["detail"] == authorize.KEY_NOT_GRANTED.format(operation="getX")
    by_template = shop.key(operations=["GET /items/{id}"])
    assert shop.call("GET", "/items/2", api_key=by_template).status_code == 200


def test_an_empty_alternative_lets_anyone_in_and_and_needs_both(shop):
    assert shop.call("GET", "/public").status_code == 200
    token, key = shop.token("x"), shop.key()
    assert shop.call("GET", "/both", token=token).status_code == 401
    assert shop.call("GET", "/both", api_key=key).status_code == 401
    assert shop.call("GET", "/both", token=token, api_key=key).status_code == 200


def test_a_key_for_another_api_is_403(shop):
    r = shop.call("GET", "/items/1", api_key=shop.key(apis=("elsewhere",)))
    assert r.status_code == 403
    assert re.match(r"The API key \w+ is not valid for API 'shop'\.", r.json()["detail"])


# -- tiergate check: the schemes must be ones the API enforces -----------------------------


def _check(tmp_path, contract: dict, policies: dict) -> list[str]:
    from gateway.contracts.lint import security_problems

    (tmp_path / "c.yaml").write_text(yaml.safe_dump(contract))
    api = {"name": "shop", "contract": "c.yaml", "upstream": {"targets": ["http://127.0.0.1:9"]}}
    config = make_config(tmp_path, [{**api, "policies": policies}])
    return security_problems(config)


def test_check_accepts_the_schemes_the_api_enforces(tmp_path):
    assert _check(tmp_path, CONTRACT, {"jwt": {}, "api-key": {}}) == []


def test_check_refuses_undefined_unenforceable_and_unconfigured_schemes(tmp_path):
    contract = yaml.safe_load(yaml.safe_dump(CONTRACT))
    contract["paths"]["/public"]["get"]["security"] = [{"ghost": []}, {"basic": []}]
    contract["components"]["securitySchemes"]["basic"] = {"type": "http", "scheme": "basic"}
    contract["components"]["securitySchemes"]["key"]["name"] = "Api-Token"
    contract["paths"]["/x"]["get"]["security"] = [{"oauth": ["shop:read", "shop:nope"]}]
    problems = "\n".join(_check(tmp_path, contract, {"jwt": False}))
    assert "'ghost', which components.securitySchemes does not define" in problems
    assert "'basic' (http basic)" in problems and "not one the gateway can enforce" in problems
    assert "'oauth' (bearer)" in problems and "jwt policy is off" in problems
    assert "scope 'shop:nope'" in problems
    problems = "\n".join(_check(tmp_path, contract, {"jwt": {}, "api-key": {}}))
    assert "reads header 'Api-Token'" in problems


def test_typo_in_an_operation_name_fails_loading_with_the_closest_match(tmp_path):
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONTRACT))
    api = {"name": "shop", "contract": "c.yaml", "upstream": {"targets": ["http://127.0.0.1:9"]}}
    for policies, field in [
        ({"jwt": {"operation_scopes": {"GET /xx": ["a"]}}}, "jwt.operation_scopes.GET /xx"),
        ({"rate-limit": {"operations": {"getx": "1/minute"}}}, "rate-limit.operations.getx"),
        ({"response-cache": {"operations": {"GET /item/{id}": {}}}}, "response-cache.operations"),
    ]:
        with pytest.raises(ConfigError) as raised:
            make_config(tmp_path, [{**api, "policies": policies}])
        message = str(raised.value)
        assert f"apis[0].policies.{field}" in message
        assert "c.yaml" in message and "did you mean" in message, message
