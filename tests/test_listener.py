"""Listener limits over raw sockets: header size, URL length, header deadline, concurrency."""

import asyncio
import contextlib
import socket
import threading
import time

import httpx
import pytest

from gateway.config.errors import ConfigError
from gateway.config.models import ListenerConfig
from gateway.listener import listener_options, protocol_for
from tests.support.configs import make_config
from tests.support.edge import (
    exchange,
    read_body,
    read_response,
    read_until_close,
    serve_edge,
    serve_gateway,
    status_of,
    upstream_fixture,  # noqa: F401 - the `upstream` fixture
)
from tests.support.servers import serve_asgi


def _config(tmp_path, upstream_url, **listener):
    return make_config(
        tmp_path,
        [{"name": "shop", "upstream": {"targets": [upstream_url]}}],
        listeners={"public": {"port": 0, **listener}},
    )


def test_listener_limits_are_validated(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://127.0.0.1:1", max_header_bytes=10, header_timeout=0)
    text = str(error.value)
    assert "listeners.public.max_header_bytes" in text
    assert "listeners.public.header_timeout" in text


def test_header_block_over_limit_is_431_and_closed(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, max_header_bytes=2048)
    with serve_gateway(config) as gw:
        head = b"GET /experience/shop/v1/x HTTP/1.1\r\nHost: a\r\n"
        complete = head + b"X-Big: " + b"a" * 3000 + b"\r\n\r\n"
        data, closed = exchange(gw.port, complete)
        assert status_of(data) == 431 and closed
        assert b"application/problem+json" in data
        # headers that never end: refused once the buffer passes the bound, not at the deadline
        endless = head + b"X-Big: " + b"a" * 20000
        data, closed = exchange(gw.port, endless, timeout=2)
        assert status_of(data) == 431 and closed
        small = httpx.get(f"{gw.url}/experience/shop/v1/x", headers={"X-Small": "a" * 1000})
        assert small.status_code == 200
    assert len(upstream.requests) == 1


def test_url_over_limit_is_414_and_closed(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, max_url_bytes=512)
    with serve_gateway(config) as gw:
        target = b"/experience/shop/v1/x?q=" + b"a" * 600
        data, closed = exchange(gw.port, b"GET " + target + b" HTTP/1.1\r\nHost: a\r\n\r\n")
        assert status_of(data) == 414 and closed
        assert httpx.get(f"{gw.url}/experience/shop/v1/x?q=" + "a" * 400).status_code == 200
    assert len(upstream.requests) == 1


def test_slow_headers_are_cut_at_the_deadline_while_others_are_served(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, header_timeout=1.0)
    with serve_gateway(config) as gw:
        slow = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        idle = socket.create_connection(("127.0.0.1", gw.port), timeout=5)
        started = time.monotonic()
        slow.sendall(b"GET /experience/shop/v1/x HTTP/1.1\r\nHost: a\r\n")
        statuses = []
        for i in range(3):  # slowloris: a header line every 0.4 s, never the blank line
            time.sleep(0.4)
            try:
                slow.sendall(f"X-{i}: y\r\n".encode())
            except OSError:
                break
            statuses.append(httpx.get(f"{gw.url}/experience/shop/v1/ok").status_code)
        data, closed = read_until_close(slow, 4.0)
        elapsed = time.monotonic() - started
        assert closed and status_of(data) == 408, data
        assert 0.9 <= elapsed < 3.0  # deadline 1 s; slack for a loaded machine
        idle_data, idle_closed = read_until_close(idle, 3.0)
        assert idle_closed and status_of(idle_data) == 408  # connected, never spoke
        slow.close()
        idle.close()
        assert statuses == [200, 200, 200][: len(statuses)] and statuses
    assert [r["path"] for r in upstream.requests] == ["/ok"] * len(statuses)


def test_keep_alive_request_after_idle_gets_a_fresh_header_deadline(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, header_timeout=1.0, keep_alive_timeout=5)
    with serve_gateway(config) as gw, socket.create_connection(("127.0.0.1", gw.port)) as s:
        request = b"GET /experience/shop/v1/x HTTP/1.1\r\nHost: a\r\n\r\n"
        s.sendall(request)
        first = read_response(s)
        time.sleep(1.2)  # idle beyond header_timeout: keep-alive governs idleness, not headers
        s.sendall(request)
        second = read_response(s)
        assert status_of(first) == 200 and status_of(second) == 200


def test_concurrency_cap_answers_503_with_retry_after(tmp_path):
    release = threading.Event()
    arrived = []

    async def slow_app(scope, receive, send):
        if scope["type"] != "http":
            return
        arrived.append(1)
        await asyncio.get_running_loop().run_in_executor(None, release.wait, 5)
        headers = [(b"content-length", b"4")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"done"})

    with serve_asgi(slow_app, lifespan="off") as upstream:
        config = _config(tmp_path, upstream.url, max_concurrency=2, retry_after=7)
        with serve_gateway(config) as gw:
            url = f"{gw.url}/experience/shop/v1/x"
            results = []
            threads = [
                threading.Thread(target=lambda: results.append(httpx.get(url, timeout=10)))
                for _ in range(2)
            ]
            for thread in threads:
                thread.start()
            deadline = time.monotonic() + 5
            while len(arrived) < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
            busy = httpx.get(url, timeout=5)
            release.set()
            for thread in threads:
                thread.join(10)
            assert busy.status_code == 503
            assert busy.headers["retry-after"] == "7"
            assert busy.headers["content-type"] == "application/problem+json"
            assert sorted(r.status_code for r in results) == [200, 200]
            assert httpx.get(url).status_code == 200


def test_both_listeners_are_built_with_their_own_limits(tmp_path):
    from gateway.listener import EdgeProtocol
    from gateway.server import build_servers
    from gateway.stack import build_gateway

    config = make_config(
        tmp_path,
        [],
        listeners={
            "public": {"port": 0, "max_header_bytes": 4096, "keep_alive_timeout": 7},
            "admin": {"port": 0, "max_concurrency": 4},
        },
    )
    public, admin = build_servers(config, build_gateway(config))
    assert issubclass(public.config.http, EdgeProtocol)
    assert public.config.http.limits.max_header_bytes == 4096
    assert public.config.timeout_keep_alive == 7
    assert admin.config.http.limits.max_concurrency == 4
    assert public.config.proxy_headers is False and admin.config.proxy_headers is False
    assert public.config.server_header is False


# -- responses on one connection: HEAD, pipelining, 100-continue, a failing app -------


def _lengths(data: bytes) -> list[int]:
    return [
        int(line.split(b":")[1])
        for line in data.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    ]


def test_head_on_a_kept_alive_connection_is_answered_and_the_next_request_served(
    tmp_path, upstream
):
    """HEAD writes no body: its head alone answers, and the connection goes on."""
    config = _config(tmp_path, upstream.url)
    with (
        serve_gateway(config) as gw,
        socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock,
    ):
        sock.sendall(b"HEAD /experience/shop/v1/x HTTP/1.1\r\nHost: a\r\n\r\n")
        head = read_response(sock, timeout=3)
        assert status_of(head) == 200 and head.endswith(b"\r\n\r\n")
        assert _lengths(head)[0] > 0  # the length a GET would have, and no body
        sock.sendall(b"GET /experience/shop/v1/y HTTP/1.1\r\nHost: a\r\n\r\n")
        data = read_response(sock, timeout=3)
        assert status_of(data) == 200
        assert data.partition(b"\r\n\r\n")[2].startswith(b"{")
    assert [r["path"] for r in upstream.requests] == ["/x", "/y"]


def test_pipelined_requests_are_answered_in_order_each_head_with_its_body(tmp_path, upstream):
    config = _config(tmp_path, upstream.url)
    requests = b"".join(
        f"GET /experience/shop/v1/p{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for i in range(3)
    )
    with serve_gateway(config) as gw:
        data, _ = exchange(
            gw.port,
            requests
            + b"HEAD /experience/shop/v1/h HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
    responses = data.split(b"HTTP/1.1 ")[1:]
    assert [r[:3] for r in responses] == [b"200"] * 4
    for index, response in enumerate(responses[:3]):
        head, _, body = response.partition(b"\r\n\r\n")
        assert f'"/p{index}"'.encode() in body and len(body) == _lengths(head)[0]
    assert responses[3].endswith(b"\r\n\r\n")  # HEAD: the head alone, then the close


def test_expect_100_continue_goes_out_before_the_final_response(tmp_path, upstream):
    config = _config(tmp_path, upstream.url)
    with (
        serve_gateway(config) as gw,
        socket.create_connection(("127.0.0.1", gw.port), timeout=5) as sock,
    ):
        sock.sendall(
            b"POST /experience/shop/v1/x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
            b"Content-Type: text/plain\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = sock.recv(65536)
        assert interim.startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(b"hello")
        rest = interim.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
        final = rest or read_response(sock, timeout=3)
        assert status_of(final) == 200
    assert upstream.requests[0]["body"] == "hello"


def test_an_app_that_fails_after_its_head_closes_the_connection_with_the_head_sent(tmp_path):
    """The head already sent is followed by a close, never by a hang."""

    async def broken(scope, receive, send):
        if scope["type"] != "http":
            return
        await send(
            {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"10")]}
        )
        raise RuntimeError("the body never comes")

    protocol = protocol_for(ListenerConfig.model_validate({}))
    with serve_asgi(broken, http=protocol, lifespan="off", log_level="critical") as server:
        port = int(server.url.rsplit(":", 1)[1])
        data, closed = exchange(port, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert closed
    assert status_of(data) == 200 and data.endswith(b"\r\n\r\n")


# -- the protocol alone, behind a plain app: adversarial request streams -------------


def _echo_app(seen=None, delay=0.0):
    """Answers each request with its method, path and body; records each scope."""

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        body = await read_body(receive)
        if body is None:
            return
        if seen is not None:
            seen.append({**scope, "body": body})
        if delay:
            await asyncio.sleep(delay)
        payload = f"{scope['method']} {scope['path']} {len(body)}".encode()
        headers = [(b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    return app


def _statuses(data: bytes) -> list[int]:
    return [int(part[:3]) for part in data.split(b"HTTP/1.1 ")[1:]]


GET_X = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"


def test_garbage_pipelined_behind_a_request_is_refused_after_its_answer():
    with serve_edge(_echo_app(delay=0.2)) as port:
        data, closed = exchange(port, GET_X + b"\x00\x01 nonsense\r\n\r\n")
    assert closed and _statuses(data) == [200, 400]
    assert b"GET /x 0" in data and b"application/problem+json" in data


def test_an_oversized_head_pipelined_behind_a_request_is_431_after_its_answer():
    big = b"GET /y HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 3000 + b"\r\n\r\n"
    with serve_edge(_echo_app(delay=0.2), max_header_bytes=2048) as port:
        data, closed = exchange(port, GET_X + big)
    assert closed and _statuses(data) == [200, 431]


def test_a_hundred_pipelined_requests_in_one_write_are_answered_in_order():
    requests = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for i in range(100))
    closing = b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    with serve_edge(_echo_app()) as port:
        data, closed = exchange(port, requests + closing, timeout=10)
    assert closed
    bodies = [part.partition(b"\r\n\r\n")[2] for part in data.split(b"HTTP/1.1 ")[1:]]
    assert bodies == [f"GET /p{i} 0".encode() for i in range(100)] + [b"GET /last 0"]


def test_an_idle_keep_alive_connection_is_closed_silently_after_its_timeout():
    with (
        serve_edge(_echo_app(), keep_alive_timeout=1, header_timeout=5) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(GET_X)
        assert status_of(read_response(sock)) == 200
        started = time.monotonic()
        data, closed = read_until_close(sock, 4.0)
    assert closed and data == b""  # no 408: the client asked for nothing
    assert 0.9 <= time.monotonic() - started < 3.0


def test_a_head_begun_during_a_slow_response_gets_its_deadline_after_that_response():
    """The 408 never lands inside the response before it."""
    with (
        serve_edge(_echo_app(delay=1.5), header_timeout=1.0) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        started = time.monotonic()
        sock.sendall(GET_X + b"GET /y HTTP/1.1\r\nHost: a\r\n")  # the second head never ends
        data, closed = read_until_close(sock, 6.0)
        elapsed = time.monotonic() - started
    assert closed and _statuses(data) == [200, 408]
    assert b"GET /x 0HTTP/1.1 408" in data  # the first response whole, then the refusal
    assert 2.4 <= elapsed < 5.0  # 1.5 s of response, then the 1 s deadline


def test_a_websocket_upgrade_pipelined_behind_a_request_is_refused_after_its_answer():
    upgrade = (
        b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with serve_edge(_echo_app(delay=0.2)) as port:
        data, closed = exchange(port, GET_X + upgrade)
    assert closed and _statuses(data) == [200, 400]
    assert b"101" not in data


def test_an_upgrade_to_another_protocol_is_answered_in_http_1_1_and_the_connection_ends():
    h2c = b"GET /h HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
    h2c += b"HTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n\r\n"
    with serve_edge(_echo_app()) as port:
        data, closed = exchange(port, h2c + GET_X)
    assert closed and _statuses(data) == [200]
    assert data.endswith(b"GET /h 0")


def test_many_field_lines_within_the_limit_all_reach_the_app_and_beyond_it_are_431():
    seen: list = []
    fields = b"".join(b"X-F%d: v\r\n" % i for i in range(600))  # ~6.5 KB of small lines
    request = b"GET /x HTTP/1.1\r\nHost: a\r\n" + fields + b"Connection: close\r\n\r\n"
    with serve_edge(_echo_app(seen), max_header_bytes=8192) as port:
        data, _ = exchange(port, request)
        assert _statuses(data) == [200]
        assert len(seen[0]["headers"]) == 602
        more = b"".join(b"X-F%d: v\r\n" % i for i in range(1200))
        data, closed = exchange(port, b"GET /x HTTP/1.1\r\nHost: a\r\n" + more + b"\r\n")
    assert closed and _statuses(data) == [431]
    assert len(seen) == 1


@pytest.mark.parametrize(
    "request_head",
    [
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nX: a\x00b\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHost: a\r\nX\r\n\r\n",
        b"GET /x HTTP/1.1\r\nHo st: a\r\n\r\n",
        b"GET /x HTTP/9.9\r\nHost: a\r\n\r\n",
    ],
)
def test_a_malformed_request_is_a_400_problem_and_never_reaches_the_app(request_head):
    seen: list = []
    with serve_edge(_echo_app(seen)) as port:
        data, closed = exchange(port, request_head)
    assert closed and _statuses(data) == [400]
    assert b"application/problem+json" in data
    assert seen == []


def test_bytes_after_a_connection_close_request_are_never_answered():
    seen: list = []
    closing = b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    with serve_edge(_echo_app(seen)) as port:
        data, closed = exchange(port, closing + GET_X + b"junk")
    assert closed and _statuses(data) == [200]
    assert [s["path"] for s in seen] == ["/x"]


def test_the_path_is_decoded_once_and_the_raw_path_kept():
    seen: list = []
    request = b"GET /a%2Fb/%25zz/caf%C3%A9?q=%20 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    with serve_edge(_echo_app(seen)) as port:
        exchange(port, request)
    assert seen[0]["path"] == "/a/b/%zz/café"
    assert seen[0]["raw_path"] == b"/a%2Fb/%25zz/caf%C3%A9"
    assert seen[0]["query_string"] == b"q=%20"


def test_a_body_sent_a_byte_at_a_time_or_chunked_arrives_whole():
    seen: list = []
    with (
        serve_edge(_echo_app(seen)) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 20\r\n\r\n")
        for byte in b"0123456789abcdefghij":
            sock.sendall(bytes([byte]))
            time.sleep(0.005)
        assert read_response(sock).endswith(b"POST /x 20")
        chunked = b"POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        sock.sendall(chunked + b"3\r\nabc\r\n0a\r\n0123456789\r\n0\r\n\r\n")
        assert read_response(sock).endswith(b"POST /c 13")
    assert seen[0]["body"] == b"0123456789abcdefghij"
    assert seen[1]["body"] == b"abc0123456789"


def test_a_client_that_leaves_mid_response_is_seen_by_the_app_as_a_disconnect():
    events: list = []

    async def streaming(scope, receive, send):
        if scope["type"] != "http":
            return
        await receive()  # the (empty) body
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        events.append((await receive())["type"])  # waits for the client to go

    with serve_edge(streaming) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(GET_X)
            received = b""
            while b"first" not in received:
                received += sock.recv(65536)
        deadline = time.monotonic() + 3
        while not events and time.monotonic() < deadline:
            time.sleep(0.02)
    assert events == ["http.disconnect"]


# -- attacks on the connection's deadline, queue and parser --------------------------


@pytest.mark.parametrize("stray", [b"\r\n", b"a"])
def test_bytes_that_start_no_request_keep_an_idle_connection_no_longer(stray):
    """A CR LF between requests, or a byte of a body the app answered without reading,
    leaves the keep-alive deadline in place: the connection still closes."""

    async def answers_at_once(scope, receive, send):
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": b"no"})

    request = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n"
    with (
        serve_edge(answers_at_once, keep_alive_timeout=1, header_timeout=1) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(request if stray == b"a" else GET_X)
        assert status_of(read_response(sock)) == 401
        started = time.monotonic()
        sock.sendall(stray)
        data, closed = read_until_close(sock, 4.0)
    assert closed and data == b""
    assert time.monotonic() - started < 3.0


def test_a_slow_app_does_not_let_a_client_queue_requests_without_bound():
    """Requests waiting their turn stop the reading: an app's receive() does not resume it."""
    batch = GET_X * 2000
    with serve_asgi(
        _echo_app(delay=0.05),
        **listener_options(ListenerConfig.model_validate({})),
        lifespan="off",
        log_level="critical",
    ) as server:
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        sock.setblocking(False)
        deepest = 0
        ends = time.monotonic() + 2.0
        while time.monotonic() < ends:
            try:
                sock.send(batch)
            except BlockingIOError:
                time.sleep(0.01)
            for connection in list(server.server.server_state.connections):
                deepest = max(deepest, len(connection.pipeline))
        sock.close()
    assert 0 < deepest <= 2 * 2000  # what one or two reads hold; tens of thousands unbounded


@pytest.mark.parametrize(
    "body",
    [
        b"3\nabc\n0\n\n",  # bare LF in the chunked framing
        b"fffffffffffffffffff1\r\nabc\r\n0\r\n\r\n",  # a chunk size beyond 64 bits
        b"3;\x00\r\nabc\r\n0\r\n\r\n",
    ],
)
def test_a_malformed_body_ends_the_request_instead_of_leaving_its_app_waiting(body):
    events: list = []

    async def reads_body(scope, receive, send):
        while True:
            message = await receive()
            events.append(message["type"])
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        await _echo_app()(scope, receive, send)

    head = b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    with serve_edge(reads_body) as port:
        data, closed = exchange(port, head + body)
        deadline = time.monotonic() + 3
        while "http.disconnect" not in events and time.monotonic() < deadline:
            time.sleep(0.02)
    assert closed and _statuses(data) == [400]
    assert events[-1] == "http.disconnect"


def test_a_malformed_body_of_a_queued_request_is_refused_after_the_answer_before_it():
    seen: list = []
    broken = b"POST /y HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n"
    with serve_edge(_echo_app(seen, delay=0.2)) as port:
        data, closed = exchange(port, GET_X + broken)
    assert closed and _statuses(data) == [200, 400]
    assert [s["path"] for s in seen] == ["/x"]


def test_a_head_behind_a_large_body_in_one_read_is_not_counted_with_that_body():
    """The header bound counts the head's bytes, not the body before it in the same read."""
    body = b"a" * 70000
    post = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % len(body)
    with (
        serve_edge(_echo_app()) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(post + body + b"GET /y HTTP/1.1\r\n")
        time.sleep(0.3)  # the rest of the head in a later read
        sock.sendall(b"Host: a\r\nConnection: close\r\n\r\n")
        data, closed = read_until_close(sock, 3.0)
    assert closed and _statuses(data) == [200, 200]
    assert data.endswith(b"GET /y 0")


def test_requests_queued_beyond_the_bound_are_refused_after_the_answers_before_them():
    """Each queued request costs memory; a client sending thousands in one write gets 503."""
    requests = b"".join(f"GET /p{i} HTTP/1.1\r\nHost: a\r\n\r\n".encode() for i in range(200))
    with serve_edge(_echo_app(delay=0.01)) as port:
        data, closed = exchange(port, requests, timeout=10)
    assert closed and _statuses(data) == [200] * 129 + [503]  # one running, 128 queued
    assert data.split(b"HTTP/1.1 ")[129].partition(b"\r\n\r\n")[2].startswith(b"GET /p128 ")


def test_a_websocket_upgrade_on_http_1_0_is_an_ordinary_request():
    """HTTP/1.0 has no Upgrade (RFC 9110 §7.8): no 101, the app answers the request."""
    scopes: list = []

    async def app(scope, receive, send):
        scopes.append(scope["type"])
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})
            return
        await _echo_app()(scope, receive, send)

    upgrade = (
        b"GET /ws HTTP/1.0\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    with serve_edge(app) as port:
        data, closed = exchange(port, upgrade)
    assert closed and _statuses(data) == [200] and data.endswith(b"GET /ws 0")
    assert scopes == ["http"]


# -- the body's deadline ------------------------------------------------------------


def test_the_body_timeout_is_validated(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://127.0.0.1:1", body_timeout=0)
    assert "listeners.public.body_timeout" in str(error.value)


def test_a_body_that_never_comes_is_408_and_its_app_sees_a_disconnect():
    events: list = []

    async def reader(scope, receive, send):
        if scope["type"] != "http":
            return
        while True:  # reads the body as it comes, until it ends or the client is gone
            message = await receive()
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                events.append(message["type"])
                return

    with serve_edge(reader, body_timeout=1.0, header_timeout=5) as port:
        started = time.monotonic()
        data, closed = exchange(
            port, b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc", timeout=5
        )
        elapsed = time.monotonic() - started
        deadline = time.monotonic() + 3
        while not events and time.monotonic() < deadline:
            time.sleep(0.02)
    assert closed and _statuses(data) == [408]
    assert b"application/problem+json" in data and b"body" in data
    assert 0.9 <= elapsed < 3.0
    assert events == ["http.disconnect"]


def test_a_trickled_body_is_cut_at_its_whole_body_deadline():
    """A byte every 0.3 s keeps the connection busy, never within the deadline."""
    with (
        serve_edge(_echo_app(), body_timeout=1.0) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        started = time.monotonic()
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n")
        with contextlib.suppress(OSError):
            for _ in range(10):
                time.sleep(0.3)
                sock.sendall(b"a")
        data, closed = read_until_close(sock, 3.0)
    assert closed and _statuses(data) == [408]
    assert time.monotonic() - started < 4.0


def test_a_body_in_time_clears_the_deadline_and_keep_alive_goes_on():
    with (
        serve_edge(_echo_app(delay=1.5), body_timeout=1.0, keep_alive_timeout=5) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nab")
        time.sleep(0.5)
        sock.sendall(b"cd")  # the body is whole at 0.5 s; the app takes 1.5 s more
        assert read_response(sock, timeout=4).endswith(b"POST /x 4")
        time.sleep(1.2)  # idle beyond body_timeout: keep-alive governs idleness
        sock.sendall(GET_X)
        assert read_response(sock, timeout=4).endswith(b"GET /x 0")


def test_a_client_waiting_for_100_continue_is_not_timed_until_the_100_goes_out():
    async def slow_then_read(scope, receive, send):
        if scope["type"] != "http":
            return
        await asyncio.sleep(1.5)  # longer than body_timeout before asking for the body
        body = (await receive())["body"]
        headers = [(b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    with (
        serve_edge(slow_then_read, body_timeout=1.0) as port,
        socket.create_connection(("127.0.0.1", port), timeout=5) as sock,
    ):
        sock.sendall(
            b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = read_response(sock, timeout=4)
        assert interim.startswith(b"HTTP/1.1 100 Continue")
        sock.sendall(b"hello")
        rest = interim.removeprefix(b"HTTP/1.1 100 Continue\r\n\r\n")
        final = rest or read_response(sock, timeout=4)
    assert status_of(final) == 200 and final.endswith(b"hello")
