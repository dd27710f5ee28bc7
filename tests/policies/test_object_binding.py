"""object-binding: `x-tiergate-bind` compiled at start-up, then enforced over a real uvicorn
gateway (built-in issuer, keys in the registry) in front of an echo upstream."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml

from gateway.checks import run_checks
from gateway.config.errors import ConfigError
from gateway.contracts.lint import binding_problems
from gateway.pipeline import policy_name
from gateway.policies import object_binding
from gateway.policies._binding import Declared, compile_binding
from gateway.policies._contract import Contract, ContractError, load_contract
from tests.support.auth_estate import identity_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.tokens import BUILTIN_ISSUER, claims, sign
from tests.support.upstreams import echo

OK = {"responses": {"200": {"description": "ok"}}}
SECURITY = [{"oauth": ["bank:read"]}, {"key": []}]
BIND_PATH = {
    "values": [{"in": "path", "name": "account_id", "claim": "account", "key": "account"}],
    "bypass-scopes": ["bank:support"],
    "mismatch": 404,
}


def _param(name: str, where: str, required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required, "schema": {"type": "string"}}


def bank_contract() -> dict[str, Any]:
    body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "properties": {"from": {"type": "object"}}}
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": "bank", "version": "1"},
        "security": SECURITY,
        "paths": {
            "/accounts/{account_id}/statements": {
                "get": {
                    **OK,
                    "operationId": "statements",
                    "parameters": [_param("account_id", "path")],
                    "x-tiergate-bind": BIND_PATH,
                }
            },
            "/search": {
                "get": {
                    **OK,
                    "operationId": "search",
                    "parameters": [_param("account", "query", False)],
                    "x-tiergate-bind": {
                        "values": [{"in": "query", "name": "account", "claim": "account"}]
                    },
                }
            },
            "/optional": {
                "get": {
                    **OK,
                    "operationId": "optional",
                    "parameters": [_param("account", "query", False)],
                    "x-tiergate-bind": {
                        "values": [
                            {"in": "query", "name": "account", "claim": "account", "optional": True}
                        ]
                    },
                }
            },
            "/profile": {
                "get": {
                    **OK,
                    "operationId": "profile",
                    "parameters": [_param("X-Account", "header")],
                    "x-tiergate-bind": {
                        "values": [{"in": "header", "name": "X-Account", "claim": "account"}]
                    },
                }
            },
            "/transfers": {
                "post": {
                    **OK,
                    "operationId": "transfer",
                    "requestBody": body,
                    "x-tiergate-bind": {
                        "values": [
                            {
                                "in": "body",
                                "name": "/from/account",
                                "claim": "account",
                                "key": "account",
                            }
                        ],
                        "mismatch": 403,
                    },
                }
            },
            "/rates": {"get": {**OK, "operationId": "rates"}},
        },
        "components": {
            "securitySchemes": {
                "oauth": {
                    "type": "oauth2",
                    "flows": {
                        "clientCredentials": {
                            "tokenUrl": "https://gateway.test/oauth/token",
                            "scopes": {"bank:read": "read", "bank:support": "support"},
                        }
                    },
                },
                "key": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            }
        },
    }


# -- config and compile (no sockets) ---------------------------------------------------------

DECLARED = Declared(
    path=("account_id",), query=frozenset({"q"}), headers=frozenset({"x-account"}), json_body=True
)


def test_a_binding_compiles_into_values_scopes_and_status() -> None:
    binding, problems = compile_binding(BIND_PATH, DECLARED)
    assert problems == [] and binding is not None
    (value,) = binding.values
    assert (value.place, value.name, value.claim, value.key, value.index) == (
        "path",
        "account_id",
        "account",
        "account",
        0,
    )
    assert binding.bypass_scopes == {"bank:support"} and binding.mismatch == 404
    header, _ = compile_binding(
        {"values": [{"in": "header", "name": "X-Account", "claim": "a"}]}, DECLARED
    )
    assert header is not None and header.values[0].name == "x-account"
    assert header.mismatch == 403  # the default
    assert compile_binding(None, DECLARED) == (None, [])


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "must be a mapping"),
        ({"values": []}, "values must be a non-empty list"),
        ({"values": [{"in": "path", "name": "id", "claim": "a"}]}, "names the path parameter 'id'"),
        ({"values": [{"in": "query", "name": "acct", "claim": "a"}]}, "it has q"),
        ({"values": [{"in": "cookie", "name": "q", "claim": "a"}]}, "in is 'cookie'"),
        ({"values": [{"in": "query", "name": "q"}]}, "names no source"),
        ({"values": [{"in": "query", "name": "q", "key": "wallet"}]}, "key is 'wallet'"),
        ({"values": [{"in": "query", "name": "q", "claim": "a b"}]}, "is not a claim name"),
        ({"values": [{"in": "query", "name": "q", "claim": "a", "optional": "yes"}]}, "true or"),
        (
            {"values": [{"in": "path", "name": "account_id", "claim": "a", "optional": True}]},
            "never",
        ),
        ({"values": [{"in": "body", "name": "customer", "claim": "a"}]}, "not a JSON pointer"),
        ({"values": [{"in": "body", "name": "", "claim": "a"}]}, "must be a mapping with"),
        ({"values": [{"in": "query", "name": "q", "claim": "a", "from": 1}]}, "unknown fields"),
        ({"values": [{"in": "query", "name": "q", "claim": "a"}], "mismatch": 401}, "403 or 404"),
        ({"values": [{"in": "query", "name": "q", "claim": "a"}], "bypass-scopes": "x"}, "scope"),
        ({"values": [{"in": "query", "name": "q", "claim": "a"}], "bypass": []}, "unknown fields"),
        (
            {
                "values": [
                    {"in": "query", "name": "q", "claim": "a"},
                    {"in": "query", "name": "q", "key": "account"},
                ]
            },
            "second time",
        ),
    ],
)
def test_a_malformed_binding_says_what_is_wrong(raw: Any, expected: str) -> None:
    binding, problems = compile_binding(raw, DECLARED)
    assert binding is None
    assert any(expected in problem for problem in problems), problems


def test_a_body_binding_needs_a_json_body() -> None:
    raw = {"values": [{"in": "body", "name": "/a", "claim": "a"}]}
    no_body = Declared(path=(), query=frozenset(), headers=frozenset(), json_body=False)
    assert "declares no JSON request body" in compile_binding(raw, no_body)[1][0]


def test_a_body_binding_needs_a_method_with_a_body() -> None:
    raw = {"values": [{"in": "body", "name": "/a", "claim": "a"}]}
    for method in ("GET", "HEAD", "DELETE"):
        declared = Declared(
            path=(), query=frozenset(), headers=frozenset(), json_body=True, method=method
        )
        assert f"binds a body value on a {method} operation" in compile_binding(raw, declared)[1][0]


def test_loading_a_contract_with_a_bad_binding_stops_naming_file_and_operation(
    tmp_path: Path,
) -> None:
    document = bank_contract()
    document["paths"]["/search"]["get"]["x-tiergate-bind"]["values"][0]["name"] = "acount"
    path = tmp_path / "bank.yaml"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(ContractError) as error:
        load_contract(path)
    text = str(error.value)
    assert str(path) in text and "operation search (GET /search)" in text
    assert "names the query parameter 'acount', which the operation does not have" in text
    assert "it has account" in text
    lenient = load_contract(path, strict=False)
    assert len(lenient.problems) == 1 and lenient.find("search").binding is None  # type: ignore[union-attr]


def test_the_operation_table_carries_each_binding() -> None:
    contract = Contract(bank_contract())
    bound = {op.name: op.binding for op in contract.operations}
    assert bound["rates"] is None
    assert bound["statements"] is not None and bound["statements"].mismatch == 404
    transfer = bound["transfer"]
    assert transfer is not None and transfer.body[0].pointer is not None
    assert transfer.body[0].pointer.parts == ["from", "account"]


def test_tiergate_check_lists_every_binding_problem(tmp_path: Path) -> None:
    document = bank_contract()
    document["paths"]["/search"]["get"]["x-tiergate-bind"]["values"][0]["claim"] = "a b"
    document["paths"]["/profile"]["get"]["x-tiergate-bind"]["values"][0]["name"] = "X-Acct"
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(document))
    api = {"name": "bank", "contract": "bank.yaml", "upstream": {"targets": ["http://h:1"]}}
    config = make_config(tmp_path, [{**api, "policies": {"jwt": {}}}])
    problems = binding_problems(config)
    assert len(problems) == 2, problems
    assert all(p.startswith(f"bank: {tmp_path / 'bank.yaml'}: operation ") for p in problems)
    assert any("search" in p and "claim 'a b' is not a claim name" in p for p in problems)
    assert any("profile" in p and "header parameter 'x-acct'" in p for p in problems)
    assert set(problems) <= set(run_checks(config, advisory=False))  # what `tiergate check` says


def test_tiergate_check_refuses_a_binding_nothing_enforces(tmp_path: Path) -> None:
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(bank_contract()))
    api = {"name": "bank", "contract": "bank.yaml", "upstream": {"targets": ["http://h:1"]}}
    off = make_config(tmp_path, [{**api, "policies": {"jwt": {}, "object-binding": False}}])
    (problem,) = binding_problems(off)
    assert "nothing enforces it" in problem and "statements" in problem
    assert binding_problems(make_config(tmp_path, [{**api, "policies": {"jwt": {}}}])) == []


def test_tiergate_check_refuses_a_binding_anyone_may_skip(tmp_path: Path) -> None:
    document = bank_contract()
    document["paths"]["/search"]["get"]["security"] = [{}, {"oauth": []}]
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(document))
    api = {"name": "bank", "contract": "bank.yaml", "upstream": {"targets": ["http://h:1"]}}
    (problem,) = binding_problems(make_config(tmp_path, [{**api, "policies": {"jwt": {}}}]))
    assert "operation search" in problem and "lets anonymous requests in" in problem


def test_config_is_checked_with_field_names(tmp_path: Path) -> None:
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(bank_contract()))
    api = {"name": "bank", "contract": "bank.yaml", "upstream": {"targets": ["http://h:1"]}}
    bad = {"jwt": {}, "object-binding": {"own_accounts": "(", "acounts": {}}}
    with pytest.raises(ConfigError) as error:
        make_config(tmp_path, [{**api, "policies": bad}])
    text = str(error.value)
    assert "apis[0].policies.object-binding.own_accounts" in text and "regular expression" in text
    assert "apis[0].policies.object-binding.acounts: unknown key" in text


# -- over real sockets -----------------------------------------------------------------------

BASE = "/experience/bank/v1"


@pytest.fixture(scope="module")
def bank(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    tmp_path = tmp_path_factory.mktemp("object-binding")
    (tmp_path / "bank.yaml").write_text(yaml.safe_dump(bank_contract()))
    (tmp_path / "plain.yaml").write_text(
        yaml.safe_dump({**bank_contract(), "paths": {"/rates": {"get": OK}}})
    )
    binding = {"accounts": {"acme": "acc_1"}, "own_accounts": "^acc_[0-9]+$", "max_body_bytes": 512}
    apis = [
        {
            "name": "bank",
            "contract": "bank.yaml",
            "policies": {"jwt": {}, "api-key": {}, "object-binding": binding},
        },
        {"name": "plain", "contract": "plain.yaml", "policies": {"jwt": {}}},
    ]
    with serve_asgi(echo) as upstream:
        targets = {"upstream": {"targets": [upstream.url]}}
        with identity_gateway(tmp_path, [{**a, **targets} for a in apis]) as gw:

            def key(consumer: str) -> str:
                async def create(registry: Any) -> str:
                    return (await registry.create_api_key(consumer, "free", ["bank"]))[1]

                return str(gw.registry(create))

            def token(scope: str = "bank:read", **extra: Any) -> str:
                return sign(gw.key, claims(BUILTIN_ISSUER, scope=scope, **extra))

            def call(
                method: str,
                path: str,
                credential: str | None = None,
                headers: Any = (),
                **kwargs: Any,
            ) -> httpx.Response:
                sent = list(headers)
                if credential is not None:
                    name = "x-api-key" if credential.startswith("tg_") else "authorization"
                    value = credential if name == "x-api-key" else f"Bearer {credential}"
                    sent.append((name, value))
                url = f"{gw.url}{BASE}{path}"
                return httpx.request(method, url, headers=sent, timeout=10, **kwargs)

            yield SimpleNamespace(gw=gw, call=call, token=token, key=key)


def test_the_policy_is_in_the_chain_only_where_an_operation_binds(bank) -> None:
    chains = {
        route.api.name: [policy_name(p) for p in route.chain]
        for route in bank.gw.gateway.table.routes
    }
    assert chains["bank"].index("object-binding") == chains["bank"].index("authorize") + 1
    assert "object-binding" not in chains["plain"]


def test_a_token_reaches_its_own_object_and_no_other(bank) -> None:
    token = bank.token(account="acc_1")
    own = bank.call("GET", "/accounts/acc_1/statements", token)
    assert own.status_code == 200 and own.json()["path"] == "/accounts/acc_1/statements"
    for other in ("acc_2", "ACC_1", "acc_1 ", "acc_%31", "acc_\u0661", "acc_1\u200b"):
        response = bank.call("GET", f"/accounts/{other}/statements", token)
        if other == "acc_%31":  # percent-decoded once: acc_1 itself
            assert response.status_code == 200
            continue
        assert response.status_code == 404, (other, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["detail"].endswith("for this caller.")
    assert bank.call("GET", "/accounts/acc_2/statements/", token).status_code == 404
    assert bank.call("HEAD", "/accounts/acc_2/statements", token).status_code == 404
    assert bank.call("HEAD", "/accounts/acc_1/statements/", token).status_code == 200


def test_query_and_header_values_are_bound_once(bank) -> None:
    token = bank.token(account="acc_1")
    assert bank.call("GET", "/search?account=acc_1", token).status_code == 200
    other = bank.call("GET", "/search?account=acc_2", token)
    assert other.status_code == 403 and other.json()["detail"] == object_binding.FORBIDDEN.format(
        what="account", value="acc_2"
    )
    for query in (
        "account=acc_1&account=acc_2",
        "account=acc_1&%61ccount=acc_2",
        "account=acc_1&account=acc_1",
    ):
        response = bank.call("GET", f"/search?{query}", token)
        assert response.status_code == 400 and "once" in response.json()["detail"], query
    assert bank.call("GET", "/search?account=acc%5F1", token).status_code == 200
    assert bank.call("GET", "/search?account=acc_1%00", token).status_code in (400, 403)
    absent = bank.call("GET", "/search", token)
    assert absent.status_code == 403 and "must name the account" in absent.json()["detail"]
    assert bank.call("GET", "/optional", token).status_code == 200
    assert bank.call("GET", "/optional?account=acc_2", token).status_code == 403
    assert bank.call("GET", "/profile", token, headers=[("x-account", "acc_1")]).status_code == 200
    assert bank.call("GET", "/profile", token, headers=[("x-account", "acc_2")]).status_code == 403
    twice = [("x-account", "acc_1"), ("X-Account", "acc_2")]
    assert bank.call("GET", "/profile", token, headers=twice).status_code == 400


def test_body_values_are_checked_before_anything_is_forwarded(bank) -> None:
    token = bank.token(account="acc_1")

    def transfer(body: str) -> httpx.Response:
        return bank.call(
            "POST",
            "/transfers",
            token,
            headers=[("content-type", "application/json")],
            content=body,
        )

    own = '{"from": {"account": "acc_1"}, "amount": 5}'
    forwarded = transfer(own)
    assert forwarded.status_code == 200 and forwarded.json()["size"] == len(own)
    assert transfer('{"from": {"account": "acc_\\u0031"}}').status_code == 200  # the same string
    for body, status, text in [
        ('{"from": {"account": "acc_2"}}', 403, "may not use from/account 'acc_2'"),
        ('{"from": {"account": 1}}', 403, "may not use"),
        ('{"from": {"account": ["acc_1"]}}', 403, "may not use"),
        ('{"from": {}}', 403, "must name the from/account"),
        ("[]", 403, "must name the from/account"),
        ('"acc_1"', 403, "must name the from/account"),
        ('{"from": "acc_1"}', 403, "must name the from/account"),
        ('{"from": ["acc_1"]}', 403, "must name the from/account"),
        ('{"from": {"account": "acc_1", "account": "acc_2"}}', 400, "repeats the key 'account'"),
        ('{"from": {"account": "acc_2", "account": "acc_1"}}', 400, "repeats the key"),
        ('{"x": 1, "x": 2, "from": {"account": "acc_1"}}', 400, "repeats the key 'x'"),
        ('{"from": {"account": "acc_1"}', 400, "not valid JSON"),
        ('{"from": {"account": "acc_1"}, "n": NaN}', 400, "not valid JSON"),
        ('{"from": {"account": "acc_1"}, "pad": "' + "x" * 600 + '"}', 413, "exceeds 512 bytes"),
    ]:
        response = transfer(body)
        assert response.status_code == status, (body, response.text)
        assert text in response.json()["detail"], (body, response.text)


def test_a_credential_without_a_subject_needs_a_bypass_scope(bank) -> None:
    client = bank.token()  # client_credentials: no end user, no account claim
    refused = bank.call("GET", "/accounts/acc_2/statements", client)
    assert refused.status_code == 403
    assert refused.json()["detail"] == object_binding.NO_SUBJECT.format(scopes="bank:support")
    no_bypass = bank.call("GET", "/search?account=acc_2", client)
    assert no_bypass.json()["detail"] == object_binding.NO_SUBJECT_NO_BYPASS
    support = bank.token("bank:read bank:support")
    assert bank.call("GET", "/accounts/acc_2/statements", support).status_code == 200
    # a claim of the wrong type is no subject at all
    assert bank.call("GET", "/accounts/1/statements", bank.token(account=1)).status_code == 403
    # a token that carries an account is bound even with the bypass scope
    user_support = bank.token("bank:read bank:support", account="acc_1")
    assert bank.call("GET", "/accounts/acc_2/statements", user_support).status_code == 404


def test_exchanged_tokens_are_bound_by_their_users_claim(bank) -> None:
    exchanged = bank.token(account="acc_1", act={"sub": "svc-mobile"}, client_id="svc-mobile")
    assert bank.call("GET", "/accounts/acc_1/statements", exchanged).status_code == 200
    assert bank.call("GET", "/accounts/acc_2/statements", exchanged).status_code == 404


def test_api_keys_are_bound_to_their_consumers_account(bank) -> None:
    mapped, named, unlinked = bank.key("acme"), bank.key("acc_7"), bank.key("globex")
    assert bank.call("GET", "/accounts/acc_1/statements", mapped).status_code == 200
    assert bank.call("GET", "/accounts/acc_7/statements", mapped).status_code == 404
    assert bank.call("GET", "/accounts/acc_7/statements", named).status_code == 200
    assert bank.call("GET", "/accounts/acc_1/statements", named).status_code == 404
    body = json.dumps({"from": {"account": "acc_1"}})
    headers = [("content-type", "application/json")]
    assert bank.call("POST", "/transfers", mapped, headers=headers, content=body).status_code == 200
    assert bank.call("POST", "/transfers", named, headers=headers, content=body).status_code == 403
    refused = bank.call("GET", "/accounts/acc_1/statements", unlinked)
    assert refused.status_code == 403 and "acts for no customer" in refused.json()["detail"]
