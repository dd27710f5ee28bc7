"""The HTTP/1.1 upstream client holds upstreams to RFC 9112 strictly.

Each upstream here is a raw socket that misbehaves on purpose. What follows a complete
response (a second response, a body longer than its Content-Length, a body on 204, 304
or HEAD) is a protocol error: the client gets 502, never the extra bytes, and the
connection is closed, never reused. Response heads are capped in fields and bytes.
"""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from gateway.proxy.errors import UPSTREAM_HEADERS_TOO_LARGE, UPSTREAM_INVALID
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.upstreams import raw_server, read_head

SMUGGLED = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nx-smuggled: 1\r\n\r\nhello"
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


class Scripted:
    """A raw keep-alive upstream: answers each request with `answer(head)`; counts sockets."""

    def __init__(self, answer, after=None) -> None:
        self.answer = answer
        self.after = after  # bytes sent on the idle connection after each answer
        self.connections = 0
        self.closed = threading.Event()  # the gateway closed a connection

    def __call__(self, conn) -> None:
        self.connections += 1
        while head := read_head(conn):
            conn.sendall(self.answer(head))
            if self.after is not None:
                time.sleep(0.1)
                conn.sendall(self.after)
        self.closed.set()


def always(answer: bytes) -> Scripted:
    return Scripted(lambda head: answer)


HEADER_LINES = b"".join(b"x-h%d: v\r\n" % i for i in range(99))
UPSTREAMS = {
    "after-204": always(b"HTTP/1.1 204 No Content\r\n\r\n" + SMUGGLED),
    "after-304": always(b'HTTP/1.1 304 Not Modified\r\netag: "v1"\r\n\r\n' + SMUGGLED),
    "after-200": always(OK + SMUGGLED),
    "longer": always(OK + b"-and-more"),
    "head-body": always(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nhello"),
    "late": Scripted(lambda head: OK, after=SMUGGLED),
    # The boundary: a content-length and 99 more fields is 100, the default cap.
    "hundred-fields": always(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n" + HEADER_LINES + b"\r\nok"
    ),
    "many-fields": always(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-one-more: v\r\n" + HEADER_LINES + b"\r\nok"
    ),
    "big-field": always(
        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-big: " + b"b" * 70_000 + b"\r\n\r\nok"
    ),
}


def endless_head(conn) -> None:
    """Starts a header field and never ends it: memory must stay bounded."""
    read_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nx-endless: ")
    for _ in range(64):
        conn.sendall(b"e" * 16384)
    time.sleep(5)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("h1-strict")
    with (
        raw_server(UPSTREAMS["after-204"]) as after_204,
        raw_server(UPSTREAMS["after-304"]) as after_304,
        raw_server(UPSTREAMS["after-200"]) as after_200,
        raw_server(UPSTREAMS["longer"]) as longer,
        raw_server(UPSTREAMS["head-body"]) as head_body,
        raw_server(UPSTREAMS["late"]) as late,
        raw_server(UPSTREAMS["hundred-fields"]) as hundred,
        raw_server(UPSTREAMS["many-fields"]) as many,
        raw_server(UPSTREAMS["big-field"]) as big,
        raw_server(endless_head) as endless,
    ):
        targets = {
            "after-204": after_204,
            "after-304": after_304,
            "after-200": after_200,
            "longer": longer,
            "head-body": head_body,
            "late": late,
            "hundred-fields": hundred,
            "many-fields": many,
            "big-field": big,
            "endless": endless,
        }
        apis = [
            {
                "name": name,
                "base_path": f"/{name}",
                # No retries: each client request is exactly one upstream exchange.
                "upstream": {"targets": [url], "retries": 0, "timeouts": {"read": 3}},
            }
            for name, url in targets.items()
        ]
        with serve_asgi(build_gateway(make_config(tmp_path, apis))) as gateway:
            yield gateway.url


def assert_invalid(response: httpx.Response, api: str, template: str = UPSTREAM_INVALID) -> None:
    assert response.status_code == 502, (response.status_code, response.headers)
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == template.format(api=api)
    assert "x-smuggled" not in response.headers
    assert b"hello" not in response.content


@pytest.mark.parametrize("name", ["after-204", "after-304", "after-200", "longer"])
def test_bytes_after_a_complete_response_are_an_error_and_close_it(gw, name):
    upstream = UPSTREAMS[name]
    for _ in range(2):
        assert_invalid(httpx.get(f"{gw}/{name}/x"), name)
    assert upstream.closed.wait(2), "the gateway kept the connection open"
    assert upstream.connections == 2  # never reused


def test_a_body_on_a_head_response_is_an_error(gw):
    upstream = UPSTREAMS["head-body"]
    for _ in range(2):
        response = httpx.head(f"{gw}/head-body/x")
        assert response.status_code == 502  # a HEAD answer has no body to explain it
        assert response.headers["content-type"] == "application/problem+json"
    assert upstream.connections == 2


def test_bytes_on_an_idle_connection_retire_it(gw):
    upstream = UPSTREAMS["late"]
    first = httpx.get(f"{gw}/late/x")
    assert (first.status_code, first.content) == (200, b"ok")
    assert upstream.closed.wait(2), "the gateway kept a connection that spoke out of turn"
    second = httpx.get(f"{gw}/late/x")
    assert (second.status_code, second.content) == (200, b"ok")
    assert "x-smuggled" not in second.headers
    assert upstream.connections == 2


def test_a_hundred_response_fields_pass(gw):
    response = httpx.get(f"{gw}/hundred-fields/x")
    assert response.status_code == 200 and response.content == b"ok"
    assert response.headers["x-h98"] == "v"


@pytest.mark.parametrize("name", ["many-fields", "big-field", "endless"])
def test_response_heads_over_the_caps_are_refused(gw, name):
    started = time.monotonic()
    response = httpx.get(f"{gw}/{name}/x", timeout=10)
    assert time.monotonic() - started < 2  # refused as it arrives, not at the read timeout
    assert_invalid(response, name, UPSTREAM_HEADERS_TOO_LARGE)
