"""Policy header-transform: config validation, then request/response changes over sockets."""

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import HTMLResponse
from starlette.routing import Route

from gateway.catalogue.security_headers import SecurityHeadersMiddleware
from gateway.config.errors import ConfigError
from tests.support.configs import make_config
from tests.support.edge import CountingUpstream, serve_gateway
from tests.support.servers import serve_asgi


def _config(tmp_path, url, policy):
    api = {"name": "shop", "upstream": {"targets": [url]}, "policies": {"header-transform": policy}}
    return make_config(tmp_path, [api])


@pytest.mark.parametrize(
    ("policy", "where", "message"),
    [
        ({"request": {"add": {"X-Consumer-ID": "x"}}}, "request.add", "managed by the gateway"),
        ({"request": {"remove": ["Content-Length"]}}, "request.remove", "managed by the gateway"),
        ({"response": {"rename": {"x-a": "transfer-encoding"}}}, "response.rename", "managed"),
        ({"request": {"add": {"bad name": "x"}}}, "request.add", "not a valid header name"),
        ({"response": {"add": {"x-a": "a\r\nb: c"}}}, "response.add", "line break"),
        ({"request": {"add": {"x-a": "smuggled\n"}}}, "request.add", "line break"),
        ({"request": {"add": {"x-a\n": "v"}}}, "request.add", "not a valid header name"),
        ({"request": {"ad": {}}}, "request.ad", "unknown key"),
    ],
)
def test_config_is_validated(tmp_path, policy, where, message):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", policy)
    assert f"apis[0].policies.header-transform.{where}: " in str(error.value)
    assert message in str(error.value)


def test_request_and_response_headers_are_transformed(tmp_path):
    banners = [(b"server", b"Apache/2.4.1"), (b"x-powered-by", b"PHP/5"), (b"x-internal", b"1")]
    app = CountingUpstream(headers=[*banners, (b"x-old", b"v")])
    with serve_asgi(app) as up:
        policy = {
            "request": {
                "add": {"X-Channel": "mobile"},
                "remove": ["Cookie"],
                "rename": {"X-Legacy-Token": "X-Token"},
            },
            "response": {
                "add": {"Cache-Control": "no-cache"},
                "remove": ["X-Internal"],
                "rename": {"x-old": "x-new"},
            },
        }
        with serve_gateway(_config(tmp_path, up.url, policy)) as gw:
            r = httpx.get(
                f"{gw.url}/experience/shop/v1/x",
                headers={"Cookie": "a=b", "X-Legacy-Token": "t", "X-Channel": "spoofed"},
            )
    seen = dict(app.requests[0]["headers"])
    assert "cookie" not in seen
    assert seen["x-token"] == "t" and "x-legacy-token" not in seen
    assert [v for k, v in app.requests[0]["headers"] if k == "x-channel"] == ["mobile"]
    assert "server" not in r.headers and "x-powered-by" not in r.headers
    assert "x-internal" not in r.headers
    assert r.headers["x-new"] == "v" and "x-old" not in r.headers
    assert r.headers["cache-control"] == "no-cache"


def test_banners_can_be_kept(tmp_path):
    app = CountingUpstream(headers=[(b"server", b"upstream/1")])
    with (
        serve_asgi(app) as up,
        serve_gateway(_config(tmp_path, up.url, {"strip_banners": False})) as gw,
    ):
        assert "upstream/1" in httpx.get(f"{gw.url}/experience/shop/v1/x").headers["server"]


def test_security_headers_middleware_on_a_starlette_page():
    async def page(request):
        return HTMLResponse("<h1>catalogue</h1>", headers={"Referrer-Policy": "same-origin"})

    app = Starlette(routes=[Route("/", page)], middleware=[Middleware(SecurityHeadersMiddleware)])
    with serve_asgi(app) as server:
        r = httpx.get(server.url)
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers.get_list("referrer-policy") == ["same-origin"]  # the page's own choice kept
