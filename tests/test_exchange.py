"""The listener's response framing (gateway/exchange.py), over real sockets.

An app's response reaches the client framed so that the connection stays in step:
field lines that would split or smuggle are refused, a body that disagrees with its
Content-Length never runs into the next response, HEAD and 204 carry no body.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time

import pytest

from gateway.exchange import STATUS_LINES
from tests.support.edge import exchange, read_response, read_until_close, serve_edge, status_of

GET = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
HEAD = b"HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n"


def answering(status=200, headers=(), bodies=(b"ok",)):
    """An app that answers every request with one head and the given body messages."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": status, "headers": list(headers)})
        for index, body in enumerate(bodies):
            more = index < len(bodies) - 1
            await send({"type": "http.response.body", "body": body, "more_body": more})

    return app


def _fields(data: bytes) -> list[bytes]:
    head = data.partition(b"\r\n\r\n")[0]
    return head.split(b"\r\n")[1:]


def _problem(data: bytes) -> dict:
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head.lower()
    return json.loads(body)


def test_every_status_has_its_line():
    assert STATUS_LINES[200] == b"HTTP/1.1 200 OK\r\n"
    assert STATUS_LINES[599] == b"HTTP/1.1 599 \r\n"
    assert 99 not in STATUS_LINES and 600 not in STATUS_LINES


# -- field lines that would split or smuggle ---------------------------------------


@pytest.mark.parametrize(
    "field",
    [
        (b"x-a", b"1\r\nset-cookie: stolen=1"),
        (b"x-a", b"1\nx-b: 2"),
        (b"x-a", b"1\rx-b: 2"),
        (b"x-a", b"nul\x00byte"),
        (b"x-a", b"del\x7f"),
        (b"x-a\r\nset-cookie", b"stolen=1"),
        (b"x a", b"space in the name"),
        (b"x:a", b"colon in the name"),
        (b"", b"empty name"),
        (b"caf\xc3\xa9", b"non-token name"),
    ],
)
def test_a_field_line_that_could_split_the_head_is_a_500_not_sent(field):
    with serve_edge(answering(headers=[(b"content-length", b"2"), field])) as port:
        data, closed = exchange(port, GET)
    assert status_of(data) == 500 and closed
    assert b"stolen" not in data and b"x-b" not in data
    assert _problem(data)["status"] == 500


def test_field_values_may_hold_tabs_and_obs_text():
    value = b"a\tb \xe9"
    with serve_edge(answering(headers=[(b"content-length", b"2"), (b"X-Odd", value)])) as port:
        data, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(data) == 200
    assert b"x-odd: " + value in _fields(data)


@pytest.mark.parametrize("status", [99, 600, 1000, -1])
def test_a_status_outside_100_599_is_a_500(status):
    with serve_edge(answering(status=status)) as port:
        data, closed = exchange(port, GET)
    assert status_of(data) == 500 and closed


@pytest.mark.parametrize(
    "lengths",
    [
        [(b"content-length", b"2"), (b"content-length", b"3")],
        [(b"content-length", b"2"), (b"transfer-encoding", b"chunked")],
        [(b"content-length", b"-1")],
        [(b"content-length", b"+2")],
        [(b"content-length", b" 2")],
        [(b"content-length", b"\xd9\xa2")],  # an Arabic-Indic two
        [(b"content-length", b"")],
    ],
)
def test_a_content_length_that_is_not_one_number_is_a_500(lengths):
    with serve_edge(answering(headers=lengths)) as port:
        data, closed = exchange(port, GET)
    assert status_of(data) == 500 and closed


def test_the_same_content_length_twice_is_one_framing():
    headers = [(b"content-length", b"2"), (b"Content-Length", b"2")]
    with serve_edge(answering(headers=headers)) as port:
        data, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert status_of(data) == 200 and data.endswith(b"\r\n\r\nok")


# -- the body against its framing ---------------------------------------------------


def test_a_body_longer_than_its_content_length_never_reaches_the_next_response():
    app = answering(headers=[(b"content-length", b"2")], bodies=(b"ok", b"HTTP/1.1 200 OK"))
    with serve_edge(app) as port:
        data, closed = exchange(port, GET + GET)
    assert closed
    assert data.count(b"HTTP/1.1") == 1  # the smuggled "response" is never written
    assert data.endswith(b"\r\n\r\nok")


def test_a_body_shorter_than_its_content_length_closes_the_connection():
    with serve_edge(answering(headers=[(b"content-length", b"10")], bodies=(b"short",))) as port:
        data, closed = exchange(port, GET + GET)
    assert closed and data.count(b"HTTP/1.1") == 1
    assert data.endswith(b"short")


def test_a_body_of_unknown_length_is_chunked_and_ends_with_the_last_chunk():
    app = answering(bodies=(b"ab", b"", b"c" * 300, b""))
    with serve_edge(app) as port, socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(GET + GET)
        data, _ = read_until_close(s, 1.0)
    first, second = data.split(b"HTTP/1.1 200")[1:]
    for response in (first, second):
        assert b"transfer-encoding: chunked" in response
        body = response.partition(b"\r\n\r\n")[2]
        assert body == b"2\r\nab\r\n12c\r\n" + b"c" * 300 + b"\r\n0\r\n\r\n"


def test_head_and_204_carry_no_body_and_no_chunked_framing():
    with serve_edge(answering(bodies=(b"ignored",))) as port:
        data, _ = exchange(port, HEAD + b"HEAD /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert data.count(b"HTTP/1.1 200 OK") == 2
    assert b"ignored" not in data and b"transfer-encoding" not in data.lower()
    with serve_edge(answering(status=204, bodies=(b"",))) as port:
        data, _ = exchange(port, GET + b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert data.count(b"HTTP/1.1 204 No Content\r\n") == 2
    assert b"transfer-encoding" not in data.lower()
    assert data.endswith(b"\r\n\r\n")


def test_messages_out_of_order_are_refused():
    async def body_first(scope, receive, send):
        await send({"type": "http.response.body", "body": b"x"})

    async def two_heads(scope, receive, send):
        start = {"type": "http.response.start", "status": 200, "headers": []}
        await send(start)
        await send(start)

    with serve_edge(body_first) as port:
        data, closed = exchange(port, GET)
    assert status_of(data) == 500 and closed
    with serve_edge(two_heads) as port:
        data, closed = exchange(port, GET)
    assert closed and data.count(b"HTTP/1.1") == 1


def test_an_app_that_ends_without_answering_gets_a_problem_500():
    async def silent(scope, receive, send):
        return None

    async def raising(scope, receive, send):
        raise ValueError("boom")

    for app in (silent, raising):
        with serve_edge(app) as port:
            data, closed = exchange(port, GET)
        assert status_of(data) == 500 and closed
        assert _problem(data)["detail"]
        assert b"boom" not in data


# -- one Date, and the connection's fate ----------------------------------------------


def test_one_date_field_and_the_apps_fields_in_order():
    headers = [(b"content-length", b"2"), (b"x-1", b"a"), (b"x-2", b"b")]
    with serve_edge(answering(headers=headers)) as port:
        data, _ = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    fields = _fields(data)
    assert sum(1 for f in fields if f.lower().startswith(b"date:")) == 1
    assert fields.index(b"x-1: a") < fields.index(b"x-2: b")


def test_http_1_0_and_connection_close_end_the_connection_with_the_response():
    with serve_edge(answering(headers=[(b"content-length", b"2")])) as port:
        for request in (
            b"GET / HTTP/1.0\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, close\r\n\r\n",
        ):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(request)
                data, closed = read_until_close(s, 3.0)
            assert closed and status_of(data) == 200
            assert b"connection: close" in _fields(data)


def test_an_apps_connection_close_ends_the_connection_after_its_body():
    headers = [(b"content-length", b"2"), (b"connection", b"close")]
    with serve_edge(answering(headers=headers)) as port:
        data, closed = exchange(port, GET + GET)
    assert closed and data.count(b"HTTP/1.1 200") == 1 and data.endswith(b"ok")


# -- when the head goes out ----------------------------------------------------------


def test_a_streamed_responses_head_goes_out_before_its_slow_body():
    async def slow(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await asyncio.sleep(1.0)
        await send({"type": "http.response.body", "body": b"late"})

    with serve_edge(slow) as port, socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        started = time.monotonic()
        s.sendall(GET)
        first = s.recv(65536)
        waited = time.monotonic() - started
        rest = read_response(s, timeout=3)
    assert first.startswith(b"HTTP/1.1 200 OK") and b"late" not in first
    assert waited < 0.8
    assert b"late" in first + rest


def test_a_small_response_is_one_write():
    """Head and body leave in one socket write: the client's first read holds both."""
    body = b'{"k": "' + b"v" * 180 + b'"}'
    with (
        serve_edge(
            answering(headers=[(b"content-length", str(len(body)).encode())], bodies=(body,))
        ) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as s,
    ):
        for _ in range(20):
            s.sendall(GET)
            assert s.recv(65536).endswith(body)


# -- statuses whose response ends with its head --------------------------------------


@pytest.mark.parametrize("status", [204, 304])
def test_a_body_sent_with_204_or_304_never_reaches_the_connection(status):
    """The client reads the head as the whole response: a body would start the next one."""
    smuggled = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nevil!"
    headers = [(b"content-length", str(len(smuggled)).encode())]
    with serve_edge(answering(status=status, headers=headers, bodies=(smuggled,))) as port:
        data, _ = exchange(port, GET + b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    assert data.count(b"HTTP/1.1 %d" % status) == 2
    assert b"evil" not in data and b"HTTP/1.1 200" not in data


@pytest.mark.parametrize("status", [100, 101, 103, 199])
def test_an_interim_status_as_the_final_response_is_a_500(status):
    """A client skips a 1xx head and would read its body as the response."""
    smuggled = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nevil!"
    headers = [(b"content-length", str(len(smuggled)).encode())]
    with serve_edge(answering(status=status, headers=headers, bodies=(smuggled,))) as port:
        data, closed = exchange(port, GET)
    assert status_of(data) == 500 and closed
    assert b"evil" not in data


def test_an_http_1_0_response_of_unknown_length_ends_with_the_close_not_chunks():
    """HTTP/1.0 has no chunked coding (RFC 9112 §6.1): the body runs to the close."""
    with serve_edge(answering(bodies=(b"ab", b"", b"cd"))) as port:
        data, closed = exchange(port, b"GET / HTTP/1.0\r\n\r\n")
    assert closed and status_of(data) == 200
    assert b"transfer-encoding" not in data.lower()
    assert data.endswith(b"\r\n\r\nabcd")
