"""Forwarded headers and spoofed headers, over real sockets.

X-Forwarded-For is a list header: a trusted proxy may append its own field line instead
of extending the client's, so every line counts (RFC 9110 §5.3). Headers only the gateway
sets are dropped in every spelling a framework would read as theirs, and the method and
path override headers are dropped unless an API lets them through.
"""

from __future__ import annotations

import ipaddress

import pytest

from gateway.config.errors import ConfigError
from gateway.proxy.headers import ForwardedPolicy, combined, request_drop_set
from tests.support.configs import make_config
from tests.support.edge import serve_gateway, upstream_fixture  # noqa: F401 - `upstream`
from tests.support.raw import raw_request
from tests.support.upstreams import headers_of

PROXY = "127.0.0.0/8"  # the test client plays the trusted proxy


def _send(gw, path: str, lines: list[str]) -> tuple[int, dict]:
    head = f"GET {path} HTTP/1.1\r\nHost: shop\r\n" + "".join(f"{x}\r\n" for x in lines)
    response = raw_request(gw.url, (head + "Connection: close\r\n\r\n").encode("latin-1"))
    return response.status, response.json()


def test_every_forwarded_for_line_counts_for_ip_restriction(tmp_path, upstream):
    policy = {"ip-restriction": {"allow": ["203.0.113.0/24"]}}
    api = {"name": "shop", "upstream": {"targets": [upstream.url]}, "policies": policy}
    config = make_config(tmp_path, [api], trusted_proxies=[PROXY])
    with serve_gateway(config) as gw:
        # The client wrote the first line itself; the proxy appended the real address.
        client_line, proxy_line = "X-Forwarded-For: 203.0.113.7", "X-Forwarded-For: 198.51.100.9"
        status, body = _send(gw, "/experience/shop/v1/x", [client_line, proxy_line])
        assert status == 403
        assert "198.51.100.9" in body["detail"]
        # The other way round the proxy vouches for an allowed client.
        lines = ["X-Forwarded-For: 198.51.100.9", "X-Forwarded-For: 203.0.113.7"]
        status, body = _send(gw, "/experience/shop/v1/x", lines)
        assert status == 200
        got = headers_of(body)
    assert got["x-forwarded-for"] == ["198.51.100.9, 203.0.113.7, 127.0.0.1"]
    assert len(upstream.requests) == 1


def test_every_forwarded_for_line_counts_for_the_token_endpoint_limit(tmp_path):
    config = make_config(
        tmp_path, [], trusted_proxies=[PROXY], rate_limiting={"token_endpoint_limit": "2/minute"}
    )
    with serve_gateway(config) as gw:
        statuses = []
        for spoof in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):  # a fresh first line each time
            request = (
                "POST /oauth/token HTTP/1.1\r\nHost: shop\r\nContent-Length: 0\r\n"
                f"X-Forwarded-For: {spoof}\r\nX-Forwarded-For: 198.51.100.9\r\n"
                "Connection: close\r\n\r\n"
            )
            statuses.append(raw_request(gw.url, request.encode()).status)
    assert statuses[2] == 429 and 429 not in statuses[:2]


def test_forwarded_proto_and_host_are_the_nearest_proxys(tmp_path, upstream):
    """A client line before the trusted proxy's must not choose the scheme or host."""
    api = {"name": "shop", "upstream": {"targets": [upstream.url]}}
    config = make_config(tmp_path, [api], trusted_proxies=[PROXY])
    with serve_gateway(config) as gw:
        lines = [
            "X-Forwarded-Proto: http",
            "X-Forwarded-Proto: https",
            "X-Forwarded-Host: evil.example",
            "X-Forwarded-Host: shop.example, api.example",
        ]
        status, body = _send(gw, "/experience/shop/v1/x", lines)
    assert status == 200
    got = headers_of(body)
    assert got["x-forwarded-proto"] == ["https"]
    assert got["x-forwarded-host"] == ["api.example"]


def test_combined_joins_field_lines_in_order():
    headers = [(b"x-forwarded-for", b"a, b"), (b"via", b"1.1 p"), (b"x-forwarded-for", b"c")]
    assert combined(headers, b"x-forwarded-for") == b"a, b, c"
    assert combined(headers, b"forwarded") is None
    policy = ForwardedPolicy([ipaddress.ip_network("10.0.0.0/8")])
    two_lines = [(b"x-forwarded-for", b"198.51.100.1"), (b"x-forwarded-for", b"203.0.113.5")]
    assert policy.client_ip("10.0.0.1", two_lines) == "203.0.113.5"
    assert policy.client_ip("192.0.2.1", two_lines) == "192.0.2.1"  # untrusted peer
    all_trusted = [(b"x-forwarded-for", b"10.0.0.3"), (b"x-forwarded-for", b" , 10.0.0.2")]
    assert policy.client_ip("10.0.0.1", all_trusted) == "10.0.0.3"
    assert policy.forwarded_for("10.0.0.1", two_lines) == b"198.51.100.1, 203.0.113.5, 10.0.0.1"


SPOOFED = [
    "x_consumer_id: admin",
    "X_Scopes: admin:all",
    "x-consumer_plan: gold",
    "x_consumer-kind: service",
    "x_client_id: c",
    "x_caller_api: orders",
    "x_caller_tier: process",
    "x_forwarded_for: 10.0.0.1",
    "x_real_ip: 10.0.0.1",
    "x_request_id: forged",
]
OVERRIDES = [
    "X-HTTP-Method-Override: DELETE",
    "X-Original-URL: /admin",
    "X-Rewrite-URL: /admin",
    "x_http_method_override: DELETE",
]


def _config(tmp_path, url, **upstream):
    return make_config(tmp_path, [{"name": "shop", "upstream": {"targets": [url], **upstream}}])


def _dropped(lines: list[str]) -> set[str]:
    return {line.split(":")[0].lower() for line in lines}


def test_underscore_spellings_of_owned_headers_and_overrides_are_dropped(tmp_path, upstream):
    with serve_gateway(_config(tmp_path, upstream.url)) as gw:
        status, body = _send(gw, "/experience/shop/v1/x", [*SPOOFED, *OVERRIDES, "x_kept: 1"])
    assert status == 200
    got = headers_of(body)
    assert not _dropped(SPOOFED + OVERRIDES) & set(got)
    assert got["x_kept"] == ["1"]  # other names with underscores are not the gateway's


def test_an_api_may_let_one_override_through(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, pass_headers=["X-HTTP-Method-Override"])
    with serve_gateway(config) as gw:
        status, body = _send(gw, "/experience/shop/v1/x", [*SPOOFED, *OVERRIDES])
    assert status == 200
    got = headers_of(body)
    assert got["x-http-method-override"] == ["DELETE"]  # in both spellings, no other
    assert got["x_http_method_override"] == ["DELETE"]
    assert "x-original-url" not in got and "x-rewrite-url" not in got
    assert not _dropped(SPOOFED) & set(got)


def test_pass_headers_refuses_anything_but_the_overrides(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://h:1", pass_headers=["X-Consumer-ID"])
    assert "apis[0].upstream.pass_headers" in str(error.value)
    assert "x-http-method-override" in str(error.value)


def test_drop_set_covers_mixed_spellings():
    default = request_drop_set()
    assert {b"x_consumer_id", b"x-consumer_id", b"x_scopes", b"x-original-url"} <= default
    assert b"x-http-method-override" not in request_drop_set(["x-http-method-override"])


def test_the_client_gets_one_date_header(tmp_path, upstream):
    """The upstream's Date and the listener's own would make two field lines of a
    singleton field (RFC 9110 §6.6.1); like nginx, the gateway sends its own."""
    api = {"name": "shop", "upstream": {"targets": [upstream.url]}}
    config = make_config(tmp_path, [api])
    with serve_gateway(config) as gw:
        head = "GET /experience/shop/v1/x HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n"
        response = raw_request(gw.url, head.encode())
    assert response.status == 200
    assert [name for name, _ in response.fields if name == "date"] == ["date"]
