"""One operation per request: the resolution rules first, then every spelling of a path
over real sockets getting one decision (scope, limit, validation, cache)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from types import SimpleNamespace

import httpx
import pytest
import yaml

from gateway.operations import ResolvedOperation, resolve
from gateway.policies._contract import Contract, ContractError
from gateway.problem import ProblemResponse
from tests.support.auth_estate import identity_gateway
from tests.support.raw import raw_request
from tests.support.servers import serve_asgi
from tests.support.tokens import BUILTIN_ISSUER, claims, sign
from tests.support.upstreams import echo

# -- resolution rules -------------------------------------------------------------------------


def _contract(paths: dict) -> Contract:
    return Contract({"openapi": "3.1.0", "paths": paths})


OK = {"responses": {"200": {"description": "ok"}}}
ORDERS = _contract(
    {
        "/orders": {"get": {**OK, "operationId": "list"}, "post": OK},
        "/orders/bulk": {"post": {**OK, "operationId": "bulk"}},
        "/orders/{order_id}": {"get": {**OK, "operationId": "one"}},
        "/orders/{order_id}/cancel": {"post": OK},
        "/a.b/{id}": {"get": OK},
        "/x+y": {"get": OK},
    }
)


def _resolve(method: str, path: str, preflight: bytes | None = None) -> ResolvedOperation:
    found = resolve(ORDERS, "shop", method, path, preflight)
    assert isinstance(found, ResolvedOperation), getattr(found, "body", found)
    return found


def _refused(method: str, path: str) -> SimpleNamespace:
    found = resolve(ORDERS, "shop", method, path)
    assert isinstance(found, ProblemResponse)
    headers = {k.decode(): v.decode() for k, v in found.headers}
    return SimpleNamespace(status=found.status, headers=headers)


def test_literal_segments_win_over_parameters():
    assert _resolve("POST", "/orders/bulk").name == "bulk"
    one = _resolve("GET", "/orders/ord_1")
    assert (one.name, one.params, one.template) == ("one", ("ord_1",), "/orders/{order_id}")
    assert _resolve("POST", "/orders/ord_1/cancel").name == "POST /orders/{order_id}/cancel"


def test_one_trailing_slash_is_ignored_and_remembered():
    assert (_resolve("GET", "/orders/").name, _resolve("GET", "/orders/").trimmed) == (
        "list",
        True,
    )
    assert _resolve("GET", "/orders").trimmed is False


def test_the_path_is_decoded_once_before_matching():
    assert _resolve("GET", "/%6Frders").name == "list"
    one = _resolve("GET", "/orders/caf%C3%A9")
    assert one.params == ("café",) and one.path == "/orders/café"
    assert _refused("GET", "/orders/%FF").status == 400  # not UTF-8


def test_head_resolves_as_get_and_preflights_as_the_method_they_ask_about():
    assert _resolve("HEAD", "/orders/7").operation is _resolve("GET", "/orders/7").operation
    assert _resolve("OPTIONS", "/orders", b"POST").operation.method == "POST"


@pytest.mark.parametrize("path", ["/Orders", "/orders;x", "/orders/7/cancel/x", "/", "/ab/1"])
def test_paths_outside_every_template_are_404(path):
    refused = _refused("GET", path)
    assert refused.status == 404
    assert refused.headers["content-type"] == "application/problem+json"


def test_unknown_method_is_405_with_allow():
    refused = _refused("DELETE", "/orders")
    assert (refused.status, refused.headers["allow"]) == (405, "GET, HEAD, POST")
    assert _refused("OPTIONS", "/orders/bulk").headers["allow"] == "POST"


def test_a_memo_keeps_fixed_paths_only_and_answers_them_the_same():
    memo: dict = {}
    first = resolve(ORDERS, "shop", "GET", "/orders/", None, memo)
    assert resolve(ORDERS, "shop", "GET", "/orders/", None, memo) is first
    assert isinstance(first, ResolvedOperation) and first.trimmed and first.name == "list"
    assert resolve(ORDERS, "shop", "POST", "/orders", None, memo).name == "POST /orders"
    resolve(ORDERS, "shop", "GET", "/orders/ord_1", None, memo)  # parameters: not kept
    resolve(ORDERS, "shop", "GET", "/x%2By", None, memo)  # an escape: not kept
    resolve(ORDERS, "shop", "GET", "/nowhere", None, memo)  # a problem: not kept
    resolve(ORDERS, "shop", "OPTIONS", "/orders", b"POST", memo)  # a preflight: not kept
    assert sorted(memo) == [("GET", "/orders/"), ("POST", "/orders")]
    # A preflight is resolved as what it asks about, whatever the memo holds for OPTIONS.
    memo[("OPTIONS", "/orders")] = first
    preflight = resolve(ORDERS, "shop", "OPTIONS", "/orders", b"POST", memo)
    assert isinstance(preflight, ResolvedOperation) and preflight.operation.method == "POST"


def test_regex_characters_in_templates_are_literal():
    assert _resolve("GET", "/a.b/1").template == "/a.b/{id}"
    assert _refused("GET", "/aXb/1").status == 404
    assert _resolve("GET", "/x+y").template == "/x+y"


def test_templates_that_differ_only_by_a_trailing_slash_are_refused():
    with pytest.raises(ContractError, match="trailing slash"):
        _contract({"/a": {"get": OK}, "/a/": {"get": OK}})


def test_config_names_an_operation_by_operation_id_or_method_and_template():
    assert ORDERS.find("bulk") is ORDERS.find("POST /orders/bulk")
    assert ORDERS.find("GET /orders/") is ORDERS.find("list")
    assert ORDERS.find("HEAD /orders") is ORDERS.find("list")
    assert ORDERS.find("GET /order") is None


# -- every spelling gets one decision, over real sockets ----------------------------------------

CONTRACT = {
    "openapi": "3.1.0",
    "info": {"title": "shop", "version": "1"},
    "security": [{"bearer": ["shop:read"]}],
    "paths": {
        "/x": {
            "get": {
                "operationId": "getX",
                "parameters": [
                    {"name": "limit", "in": "query", "schema": {"type": "integer", "maximum": 9}}
                ],
                **OK,
            }
        },
        "/other": {"get": OK},
    },
    "components": {"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
}


class CountingUpstream:
    """The echo upstream, counting the requests that reach it."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.lock = threading.Lock()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            with self.lock:
                self.paths.append(scope["raw_path"].decode())
        await echo(scope, receive, send)


@pytest.fixture
def shop(tmp_path) -> Iterator[SimpleNamespace]:
    (tmp_path / "shop.yaml").write_text(yaml.safe_dump(CONTRACT))
    upstream = CountingUpstream()
    with serve_asgi(upstream) as up:
        api = {
            "name": "shop",
            "contract": "shop.yaml",
            "upstream": {"targets": [up.url]},
            "policies": {
                "jwt": {},
                "rate-limit": {"operations": {"getX": "4/minute"}, "anonymous": ["100/minute"]},
                "request-validation": {},
                "response-cache": {
                    "shareable_per_consumer": True,
                    "operations": {"GET /x": {"default_ttl": 60}},
                },
            },
        }
        with identity_gateway(tmp_path, [api], access_log=True) as gw:
            yield SimpleNamespace(url=gw.url, key=gw.key, upstream=upstream)


def _token(env: SimpleNamespace, scope: str) -> str:
    return sign(env.key, claims(BUILTIN_ISSUER, scope=scope))


BASE = "/experience/shop/v1"
SAME = [("GET", "/x"), ("GET", "/x/"), ("GET", "/%78"), ("HEAD", "/x")]
REFUSED = [("/X", 404), ("/x;y", 404), ("/x%2F..", 400), ("/x/..", 400), ("/%2578", 400)]


def _send(env: SimpleNamespace, method: str, path: str, token: str | None, query: str = ""):
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    request = (
        f"{method} {BASE}{path}{query} HTTP/1.1\r\nHost: gw\r\n{auth}Connection: close\r\n\r\n"
    )
    return raw_request(env.url, request.encode())


def test_every_spelling_needs_the_same_scope(shop):
    wrong = _token(shop, "other")
    for method, path in SAME:
        r = _send(shop, method, path, wrong)
        assert r.status == 403, (method, path)
        assert 'scope="shop:read"' in r.headers["www-authenticate"]
        assert _send(shop, method, path, None).status == 401, (method, path)
    assert shop.upstream.paths == []


def test_a_per_operation_limit_holds_across_every_spelling(shop):
    token = _token(shop, "shop:read")
    # Each spelling once (4 = the limit), then every spelling is refused: one counter.
    assert [_send(shop, m, p, token, "?limit=1").status for m, p in SAME] == [200] * 4
    assert [_send(shop, m, p, token, "?limit=1").status for m, p in SAME] == [429] * 4
    assert _send(shop, "GET", "/other", token).status == 200  # another operation


def test_every_spelling_is_validated_against_the_operation(shop):
    token = _token(shop, "shop:read")
    for method, path in SAME:
        r = _send(shop, method, path, token, "?limit=99")
        assert r.status == 400, (method, path)
    assert shop.upstream.paths == []


def test_every_spelling_shares_one_cache_entry(shop):
    token = _token(shop, "shop:read")
    first = _send(shop, "GET", "/x", token)
    assert (first.status, first.headers["x-cache"]) == (200, "MISS")
    for method, path in SAME[1:]:
        r = _send(shop, method, path, token)
        assert (r.status, r.headers["x-cache"]) == (200, "HIT"), (method, path)
    assert shop.upstream.paths == ["/x"]  # the upstream saw the operation's own path once


@pytest.mark.parametrize(("path", "status"), REFUSED)
def test_other_spellings_are_refused_before_any_policy_or_upstream(shop, path, status):
    token = _token(shop, "shop:read")
    r = _send(shop, "GET", path, token)
    assert r.status == status
    assert r.headers["content-type"] == "application/problem+json"
    assert shop.upstream.paths == []


def test_unknown_paths_and_methods_come_from_the_gateway(shop):
    token = _token(shop, "shop:read")
    missing = httpx.get(f"{shop.url}{BASE}/nope", headers={"authorization": f"Bearer {token}"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "API 'shop' has no operation at '/nope'."
    assert "x-request-id" in missing.headers
    wrong = httpx.delete(f"{shop.url}{BASE}/x")
    assert (wrong.status_code, wrong.headers["allow"]) == (405, "GET, HEAD")
    assert wrong.headers["content-type"] == "application/problem+json"
    assert shop.upstream.paths == []


def test_the_access_log_and_metrics_name_the_operation(shop, caplog):
    token = _token(shop, "shop:read")
    with caplog.at_level("INFO", logger="tiergate.access"):
        assert _send(shop, "GET", "/%78/", token).status == 200
    lines = [r.getMessage() for r in caplog.records if r.name == "tiergate.access"]
    assert any('"operation":"getX"' in line and '"route":"/x"' in line for line in lines)
