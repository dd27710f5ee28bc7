"""What the forwarder sends upstream and back: headers, bodies, methods, redirects."""

from __future__ import annotations

import socket

import httpx
import pytest

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.raw import raw_request
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo, headers_of, raw_server, read_head

HOP_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: x-secret, keep-alive\r\n"
    b"X-Secret: 1\r\nKeep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTrailer: x-t\r\n"
    b"Upgrade: h2c\r\nX-Kept: yes\r\n\r\nok"
)


def hop_by_hop_upstream(conn):
    read_head(conn)
    conn.sendall(HOP_RESPONSE)


def not_modified(conn):
    status = b"204 No Content" if b"/204" in read_head(conn) else b"304 Not Modified"
    conn.sendall(b"HTTP/1.1 " + status + b'\r\nContent-Length: 100\r\nETag: "v1"\r\n\r\n')


@pytest.fixture(scope="module")
def gw(tmp_path_factory, httpbin_url):
    tmp_path = tmp_path_factory.mktemp("forward")
    with (
        serve_asgi(echo) as upstream,
        raw_server(hop_by_hop_upstream) as hop,
        raw_server(not_modified) as cached,
    ):
        apis = [
            {"name": "echo", "base_path": "/echo", "upstream": {"targets": [upstream.url]}},
            {"name": "bin", "base_path": "/bin", "upstream": {"targets": [httpbin_url]}},
            {"name": "hop", "base_path": "/hop", "upstream": {"targets": [hop]}},
            {"name": "cached", "base_path": "/cached", "upstream": {"targets": [cached]}},
            {
                "name": "local",
                "base_path": "/local",
                "upstream": {"targets": ["asgi:tests.support.upstreams:echo"]},
            },
            {
                "name": "keep",
                "base_path": "/keep",
                "strip_base_path": False,
                "upstream": {"targets": [upstream.url + "/base"]},
            },
        ]
        with serve_asgi(build_gateway(make_config(tmp_path, apis))) as gateway:
            yield gateway.url


def test_hop_by_hop_request_headers_are_stripped(gw):
    sent = (
        b"GET /echo/x HTTP/1.1\r\nHost: shop.example\r\nConnection: close, x-private\r\n"
        b"X-Private: secret\r\nKeep-Alive: 300\r\nTE: trailers\r\nTrailer: x-t\r\n"
        b"Proxy-Authorization: Basic Zm9v\r\nProxy-Connection: keep-alive\r\n"
        b"X-End-To-End: kept\r\n\r\n"
    )
    got = headers_of(raw_request(gw, sent).json())
    for name in (
        "connection",
        "x-private",
        "keep-alive",
        "te",
        "trailer",
        "proxy-authorization",
        "proxy-connection",
    ):
        assert name not in got, name
    assert got["x-end-to-end"] == ["kept"]
    assert got["host"] != ["shop.example"]  # the upstream's own authority
    assert got["x-forwarded-host"] == ["shop.example"]


def test_names_listed_on_any_connection_line_are_stripped(gw):
    # The first line being empty once hid what the second one lists.
    sent = (
        b"GET /echo/x HTTP/1.1\r\nHost: h\r\nConnection: \r\nX-Private: secret\r\n"
        b"Connection: x-private, x-other\r\nX-Other: 1\r\nX-End-To-End: kept\r\n\r\n"
    )
    got = headers_of(raw_request(gw, sent).json())
    assert "x-private" not in got and "x-other" not in got
    assert got["x-end-to-end"] == ["kept"]


def test_hop_by_hop_response_headers_are_stripped(gw):
    response = httpx.get(f"{gw}/hop/x")
    assert response.text == "ok"
    for name in ("x-secret", "keep-alive", "proxy-authenticate", "trailer", "upgrade"):
        assert name not in response.headers, name
    assert response.headers["x-kept"] == "yes"


def test_nothing_is_added_but_the_gateway_headers(gw):
    sent = b"POST /echo/x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc"
    got = headers_of(raw_request(gw, sent).json())
    assert sorted(got) == sorted(
        [
            "host",
            "content-length",
            "x-forwarded-for",
            "x-forwarded-proto",
            "x-forwarded-host",
            "x-request-id",
            "via",
            "traceparent",
        ]
    )
    assert got["content-length"] == ["3"]
    assert got["via"] == ["1.1 tiergate"]


def test_forwarded_headers_from_an_untrusted_peer_are_replaced(gw):
    response = httpx.get(
        f"{gw}/echo/x",
        headers={
            "X-Forwarded-For": "6.6.6.6",
            "X-Forwarded-Proto": "https",
            "X-Forwarded-Host": "evil.example",
            "Forwarded": "for=6.6.6.6",
            "X-Real-IP": "6.6.6.6",
        },
    )
    got = headers_of(response.json())
    assert got["x-forwarded-for"] == ["127.0.0.1"]
    assert got["x-forwarded-proto"] == ["http"]
    assert got["x-forwarded-host"] == [gw.removeprefix("http://")]
    assert "forwarded" not in got
    assert "x-real-ip" not in got


def test_forwarded_headers_from_a_trusted_proxy_are_extended(tmp_path):
    with serve_asgi(echo) as upstream:
        config = make_config(
            tmp_path,
            [{"name": "echo", "base_path": "/echo", "upstream": {"targets": [upstream.url]}}],
            trusted_proxies=["127.0.0.0/8"],
        )
        with serve_asgi(build_gateway(config)) as gateway:
            response = httpx.get(
                f"{gateway.url}/echo/x",
                headers={
                    "X-Forwarded-For": "203.0.113.9, 10.1.1.1",
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "shop.example",
                },
            )
    got = headers_of(response.json())
    assert got["x-forwarded-for"] == ["203.0.113.9, 10.1.1.1, 127.0.0.1"]
    assert got["x-forwarded-proto"] == ["https"]
    assert got["x-forwarded-host"] == ["shop.example"]


def test_identity_headers_sent_by_a_client_are_dropped(gw):
    spoofed = {
        "X-Consumer-ID": "admin",
        "X-Client-ID": "c",
        "X-Scopes": "all",
        "X-Consumer-Plan": "gold",
        "X-Consumer-Kind": "service",
        "X-Caller-API": "orders",
        "X-Caller-Tier": "process",
    }
    got = headers_of(httpx.get(f"{gw}/echo/x", headers=spoofed).json())
    assert not {name.lower() for name in spoofed} & set(got)


def test_request_id_reaches_httpbin(gw):
    response = httpx.get(f"{gw}/bin/headers?show_env=1", headers={"X-Request-ID": "req-42"})
    assert response.json()["headers"]["X-Request-Id"] == "req-42"
    assert response.headers["x-request-id"] == "req-42"


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_passed_through(gw, status):
    response = httpx.get(f"{gw}/bin/redirect-to?url=/get&status_code={status}")
    assert response.status_code == status
    assert response.headers["location"] == "/get"


def test_head_keeps_the_length_and_sends_no_body(gw):
    response = httpx.head(f"{gw}/bin/bytes/5000")
    assert response.status_code == 200
    assert response.headers["content-length"] == "5000"
    assert response.content == b""


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_bodiless_statuses_keep_the_connection_usable(gw, method):
    # A 304 may state a Content-Length; no body follows, and the client's
    # connection must stay good for the next request.
    host, port = gw.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        for status in (304, 204, 304):
            sock.sendall(f"{method} /cached/{status} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            head = read_head(sock)
            assert head.startswith(f"HTTP/1.1 {status} ".encode()), head
            assert b'etag: "v1"' in head


def test_methods_bodies_and_query_reach_httpbin(gw):
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        response = httpx.request(method, f"{gw}/bin/anything/p?a=1&a=2", content=b"x" * 100)
        body = response.json()
        assert body["method"] == method
        assert body["args"] == {"a": ["1", "2"]}
        assert body["data"] == "x" * 100
    assert httpx.get(f"{gw}/bin/status/418").status_code == 418


def test_large_upload_with_content_length_keeps_it(gw):
    response = httpx.post(f"{gw}/echo/x", content=b"a" * (3 << 20))
    body = response.json()
    got = headers_of(body)
    assert body["size"] == 3 << 20
    assert got["content-length"] == [str(3 << 20)]
    assert "transfer-encoding" not in got


def test_base_path_kept_and_target_prefix(gw):
    assert httpx.get(f"{gw}/keep/a?b=1").json()["path"] == "/base/keep/a"


def test_in_process_target(gw):
    body = httpx.post(f"{gw}/local/x?y=1", content=b"hello").json()
    assert body["path"] == "/x"
    assert body["query"] == "y=1"
    assert body["size"] == 5
    assert headers_of(body)["via"] == ["1.1 tiergate"]
    assert headers_of(body)["host"] == ["tiergate.internal"]
