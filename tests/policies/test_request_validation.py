"""Policy request-validation: config and contract checks, then requests over real sockets
against a tiny contract of our own (tests/policies/contracts/shop.yaml)."""

import shutil
import time
from pathlib import Path

import httpx
import pytest

from gateway.config.errors import ConfigError
from gateway.policies.request_validation import DRIFT
from tests.support.configs import make_config
from tests.support.edge import CountingUpstream, serve_gateway
from tests.support.servers import serve_asgi

CONTRACT = Path(__file__).parent / "contracts" / "shop.yaml"
MOBILE = {"X-Channel": "mobile"}


def _config(tmp_path, url, policy):
    shutil.copy(CONTRACT, tmp_path / "shop.yaml")
    api = {
        "name": "shop",
        "contract": "shop.yaml",
        "upstream": {"targets": [url]},
        "policies": {"request-validation": policy},
    }
    return make_config(tmp_path, [api])


def test_config_is_validated(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", {"responses": "enforce", "max_body_bytes": -1})
    text = str(error.value)
    assert (
        "apis[0].policies.request-validation.responses: Input should be 'off' or 'shadow'" in text
    )
    assert "apis[0].policies.request-validation.max_body_bytes" in text


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    app = CountingUpstream()
    with serve_asgi(app) as up:
        config = _config(tmp_path_factory.mktemp("rv"), up.url, {})
        with serve_gateway(config) as gw:
            yield f"{gw.url}/experience/shop/v1", app


@pytest.fixture
def base(servers):
    servers[1].requests.clear()
    return servers[0]


@pytest.fixture
def upstream(servers):
    return servers[1]


def _errors(response, status=400):
    """{(in, name or pointer): detail} of a validation problem with the given status."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["title"] == {400: "Bad Request", 422: "Unprocessable Content"}[status]
    for error in problem["errors"]:  # the one documented member format
        assert set(error) == {"in", "pointer" if error["in"] == "body" else "name", "detail"}
    return {(e["in"], e.get("name", e.get("pointer"))): e["detail"] for e in problem["errors"]}


def test_valid_requests_are_forwarded(base, upstream):
    assert (
        httpx.get(f"{base}/orders?limit=5&status=open,shipped", headers=MOBILE).status_code == 200
    )
    assert httpx.get(f"{base}/orders/7").status_code == 200
    assert httpx.get(f"{base}/orders/latest").status_code == 200  # literal beats the template
    good = {"sku": "ABC-123", "quantity": 2, "lines": [{"qty": 1}]}
    r = httpx.post(f"{base}/orders", json=good)
    assert r.status_code == 200
    assert upstream.requests[-1]["body"] == r.request.content.decode()  # body handed on intact
    assert len(upstream.requests) == 4


def test_query_header_and_path_violations_name_each_parameter(base, upstream):
    response = httpx.get(f"{base}/orders?limit=500&status=lost", headers={"X-Channel": "tv"})
    errors = _errors(response)
    assert set(errors) == {("query", "limit"), ("query", "status"), ("header", "x-channel")}
    assert "500" in errors[("query", "limit")]
    assert response.json()["detail"].startswith("The query parameter 'limit' is not valid: ")
    assert set(_errors(httpx.get(f"{base}/orders?limit=five"))) == {
        ("query", "limit"),
        ("header", "x-channel"),  # required header missing: names the header itself
    }
    path = httpx.get(f"{base}/orders/0")
    assert set(_errors(path)) == {("path", "orderId")}
    assert path.json()["detail"].startswith("The path parameter 'orderId' is not valid")
    assert set(_errors(httpx.get(f"{base}/orders/abc"))) == {("path", "orderId")}
    assert upstream.requests == []


def test_pattern_errors_do_not_quote_the_contracts_regex(base, upstream):
    response = httpx.post(f"{base}/orders", json={"sku": "nope", "quantity": 1})
    assert _errors(response, 422) == {("body", "/sku"): "does not have the expected format"}
    assert "^" not in response.text and "[A-Z]" not in response.text


def test_a_body_that_breaks_the_schema_is_422_malformed_or_missing_json_400(base, upstream):
    bad = {"sku": "nope", "lines": [{"qty": 0}], "extra": True}
    response = httpx.post(f"{base}/orders", json=bad)
    errors = _errors(response, 422)
    assert {("body", "/sku"), ("body", "/quantity"), ("body", "/lines/0/qty"), ("body", "")} <= set(
        errors
    )
    assert response.json()["detail"].startswith("The request body does not match the schema: ")
    errors = _errors(
        httpx.post(
            f"{base}/orders", content=b"{not json", headers={"content-type": "application/json"}
        )
    )
    assert "not valid JSON" in errors[("body", "")]
    missing = httpx.post(f"{base}/orders")  # required body missing
    assert _errors(missing) == {("body", ""): "This request needs a JSON body."}

    def chunked():
        yield b'{"sku": "ABC-123",'
        yield b' "quantity": "many"}'

    r = httpx.post(
        f"{base}/orders", content=chunked(), headers={"content-type": "application/json"}
    )
    assert set(_errors(r, 422)) == {("body", "/quantity")}
    assert upstream.requests == []


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_not_json(base, upstream, constant):
    """Python's JSON reader takes them; RFC 8259 does not, nor does any other tier."""
    body = b'{"sku": "ABC-123", "quantity": 1, "note": ' + constant + b"}"
    r = httpx.post(f"{base}/orders", content=body, headers={"content-type": "application/json"})
    assert "not valid JSON" in _errors(r)[("body", "")]
    assert upstream.requests == []


@pytest.mark.parametrize("value", ["5%0A", "5%0D%0A", "%205", "5%20", "%2B5", "%D9%A5"])
def test_a_number_with_anything_around_it_is_not_a_number(base, upstream, value):
    """The gateway judges the text the upstream gets: `5\\n` and an Arabic-Indic five are
    not the integer 5 (a `$`-anchored match took the newline, and `\\d` and int() take
    any Unicode digit: parser differentials)."""
    response = httpx.get(f"{base}/orders?limit={value}", headers=MOBILE)
    assert ("query", "limit") in _errors(response)
    assert upstream.requests == []


def test_an_integral_number_is_an_integer_as_in_json_schema(base, upstream):
    """2.0 and 2e0 are integers in JSON Schema 2020-12 (the tier APIs accept them too)."""
    for text in (b"2.0", b"2e0"):
        body = b'{"sku": "ABC-123", "quantity": ' + text + b"}"
        r = httpx.post(f"{base}/orders", content=body, headers={"content-type": "application/json"})
        assert r.status_code == 200, r.text
    fraction = httpx.post(f"{base}/orders", json={"sku": "ABC-123", "quantity": 2.5})
    assert set(_errors(fraction, 422)) == {("body", "/quantity")}


def test_a_content_type_that_is_not_utf8_is_415_not_a_crash(base, upstream):
    """Header bytes are Latin-1 to HTTP (obs-text); reading them as UTF-8 raised."""
    r = httpx.post(f"{base}/orders", content=b"{}", headers={"content-type": b"text/\xff"})
    assert r.status_code == 415, r.text
    assert r.headers["content-type"] == "application/problem+json"
    assert upstream.requests == []


def test_unknown_operations_are_404_and_wrong_methods_405(base, upstream):
    r = httpx.get(f"{base}/customers")
    assert r.status_code == 404 and r.headers["content-type"] == "application/problem+json"
    r = httpx.put(f"{base}/orders/3", json={})
    assert r.status_code == 405
    assert r.headers["allow"] == "DELETE, GET, HEAD"
    r = httpx.post(f"{base}/orders", content=b"sku=1", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert upstream.requests == []


def test_response_drift_is_logged_and_counted_but_never_blocks(tmp_path):
    app = CountingUpstream()  # answers every request with a JSON echo: not an Order
    with serve_asgi(app) as up:
        config = _config(tmp_path, up.url, {"responses": "shadow"})
        with serve_gateway(config) as gw:
            before = DRIFT["shop"]
            r = httpx.get(f"{gw.url}/experience/shop/v1/orders/9")
            assert r.status_code == 200 and r.json()["path"] == "/orders/9"
            assert _eventually(lambda: DRIFT["shop"] == before + 1)  # counted after sending
            r = httpx.delete(f"{gw.url}/experience/shop/v1/orders/9")  # 200 is not declared
            assert r.status_code == 200
            assert _eventually(lambda: DRIFT["shop"] == before + 2)


def _eventually(condition, timeout=2.0):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_check_reports_a_contract_that_does_not_compile(tmp_path):
    from gateway.checks import run_checks

    config = _config(tmp_path, "http://h:1", {})
    assert run_checks(config) == []
    (tmp_path / "shop.yaml").write_text(
        "openapi: 3.1.0\npaths:\n  /x:\n    get:\n      parameters:\n"
        "        - {name: q, in: query, schema: {type: 12}}\n"
    )
    # The tier lint reports the invalid contract too; request validation says why.
    problems = [p for p in run_checks(config) if "request-validation:" in p]
    assert len(problems) == 1 and "API 'shop': request-validation:" in problems[0]
    assert "GET /x: invalid schema" in problems[0]


def test_contract_paths_below_the_base_path_when_it_is_not_stripped(tmp_path):
    app = CountingUpstream()
    with serve_asgi(app) as up:
        config = _config(tmp_path, up.url, {})
        raw_api = config.apis[0].model_dump(exclude_unset=True)
        shutil.copy(CONTRACT, tmp_path / "shop.yaml")
        raw_api.update(strip_base_path=False, policies={"request-validation": {}})
        config = make_config(tmp_path, [raw_api])
        with serve_gateway(config) as gw:
            assert httpx.get(f"{gw.url}/experience/shop/v1/orders/4").status_code == 200
            assert httpx.get(f"{gw.url}/experience/shop/v1/orders/x").status_code == 400
    assert [r["path"] for r in app.requests] == ["/experience/shop/v1/orders/4"]


def test_experience_apis_validate_by_default_and_can_opt_out(tmp_path):
    shutil.copy(CONTRACT, tmp_path / "shop.yaml")
    base = {"name": "shop", "contract": "shop.yaml", "upstream": {"targets": ["http://h:1"]}}
    from gateway.loading import validate_config

    raw = {"apis": [{**base, "tier": "experience"}], "access_log": False}
    config = validate_config(raw, tmp_path / "tiergate.yaml", env={})
    assert "request-validation" in config.apis[0].policy_configs
    raw["apis"][0]["policies"] = {"request-validation": False}
    config = validate_config(raw, tmp_path / "tiergate.yaml", env={})
    assert "request-validation" not in config.apis[0].policy_configs
    raw["apis"][0] = {**base, "tier": "process", "base_path": "/process/shop/v1"}
    config = validate_config(raw, tmp_path / "tiergate.yaml", env={})
    assert "request-validation" not in config.apis[0].policy_configs
