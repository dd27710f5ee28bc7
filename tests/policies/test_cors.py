"""Policy cors: config validation, then preflights and simple requests over real sockets."""

import httpx
import pytest

from gateway.config.errors import ConfigError
from gateway.policies.cors import WILDCARD_WITH_CREDENTIALS
from tests.support.configs import make_config
from tests.support.edge import CountingUpstream, serve_gateway
from tests.support.servers import serve_asgi

SHOP = "https://shop.example"


def _config(tmp_path, url, policy):
    api = {"name": "shop", "upstream": {"targets": [url]}, "policies": {"cors": policy}}
    return make_config(tmp_path, [api])


def test_wildcard_with_credentials_is_refused_precisely(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", {"allow_origins": ["*"], "allow_credentials": True})
    assert f"apis[0].policies.cors: {WILDCARD_WITH_CREDENTIALS}" in str(error.value)


def test_bad_origins_and_methods_are_refused(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(
            tmp_path,
            "http://h:1",
            {"allow_origins": ["shop.example/x"], "allow_methods": ["FETCH"]},
        )
    text = str(error.value)
    assert "apis[0].policies.cors.allow_origins: 'shop.example/x' is not an origin" in text
    assert "apis[0].policies.cors.allow_methods: unknown HTTP method 'FETCH'" in text


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    # The upstream sends its own permissive CORS headers: the gateway must replace them.
    app = CountingUpstream(headers=[(b"access-control-allow-origin", b"*")])
    with serve_asgi(app) as up:
        policy = {
            "allow_origins": [SHOP],
            "allow_methods": ["GET", "POST", "DELETE"],
            "allow_credentials": True,
            "max_age": 300,
        }
        config = _config(tmp_path_factory.mktemp("cors"), up.url, policy)
        with serve_gateway(config) as gw:
            yield f"{gw.url}/experience/shop/v1/items", app


def test_preflight_is_answered_at_the_gateway(servers):
    url, upstream = servers
    before = len(upstream.requests)
    r = httpx.options(
        url,
        headers={
            "Origin": SHOP,
            "Access-Control-Request-Method": "DELETE",
            "Access-Control-Request-Headers": "Authorization, Content-Type",
        },
    )
    assert r.status_code == 204
    assert r.headers["access-control-allow-origin"] == SHOP
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "DELETE" in r.headers["access-control-allow-methods"]
    assert r.headers["access-control-max-age"] == "300"
    assert "Origin" in r.headers.get_list("vary")
    assert len(upstream.requests) == before  # never forwarded


@pytest.mark.parametrize(
    ("origin", "method", "asked"),
    [
        ("https://evil.example", "GET", ""),  # not listed
        (SHOP, "PUT", ""),  # method not allowed
        (SHOP, "GET", "X-Secret"),  # header not allowed
    ],
)
def test_refused_preflight_has_no_allow_headers(servers, origin, method, asked):
    url, upstream = servers
    before = len(upstream.requests)
    headers = {"Origin": origin, "Access-Control-Request-Method": method}
    if asked:
        headers["Access-Control-Request-Headers"] = asked
    r = httpx.options(url, headers=headers)
    assert r.status_code == 204
    assert not [k for k in r.headers if k.startswith("access-control-allow")]
    assert len(upstream.requests) == before


def test_listed_origin_is_echoed_with_credentials_and_vary(servers):
    url, _ = servers
    r = httpx.get(url, headers={"Origin": SHOP})
    assert r.status_code == 200
    assert r.headers.get_list("access-control-allow-origin") == [SHOP]
    assert r.headers["access-control-allow-credentials"] == "true"
    assert "Origin" in r.headers.get_list("vary")


def test_arbitrary_origin_is_never_reflected(servers):
    url, _ = servers
    r = httpx.get(url, headers={"Origin": "https://evil.example"})
    assert r.status_code == 200
    # the upstream's own "*" is removed too: the gateway owns CORS for this API
    assert "access-control-allow-origin" not in r.headers
    assert "access-control-allow-credentials" not in r.headers
    assert "Origin" in r.headers.get_list("vary")


def test_wildcard_without_credentials(tmp_path):
    app = CountingUpstream()
    with serve_asgi(app) as up:
        config = _config(tmp_path, up.url, {"allow_origins": ["*"]})
        with serve_gateway(config) as gw:
            r = httpx.get(
                f"{gw.url}/experience/shop/v1/x", headers={"Origin": "https://any.example"}
            )
            assert r.headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in r.headers
