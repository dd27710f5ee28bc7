"""Upstream failures become problem+json: refused 502, timeouts 504, garbage 502."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import free_port, serve_asgi
from tests.support.upstreams import raw_server, read_head


@contextmanager
def blackhole() -> Iterator[str]:
    """A listening socket whose accept queue is full: new connections hang in SYN."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(0)
    port = sock.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        for filler in fillers:
            filler.close()
        sock.close()


def silent(conn):
    read_head(conn)
    time.sleep(3)


def garbage(conn):
    read_head(conn)
    conn.sendall(b"\x00\x01 this is not HTTP \xff\r\n\r\n")


def close_early(conn):
    read_head(conn)


def truncated_small(conn):
    read_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-part")


def answers_early(conn):
    read_head(conn)  # ...and not the body
    conn.sendall(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 8\r\n\r\ntoo big!")
    time.sleep(3)


def never_reads_body(conn):
    read_head(conn)
    time.sleep(3)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("errors")
    with (
        blackhole() as hole,
        raw_server(silent) as slow,
        raw_server(garbage) as junk,
        raw_server(close_early) as early,
        raw_server(truncated_small) as short,
        raw_server(answers_early) as early_answer,
        raw_server(never_reads_body) as deaf,
    ):
        fast = {"connect": 0.3, "read": 0.5}

        def api(name, target):
            upstream = {"targets": [target], "timeouts": fast, "retries": 0}
            return {"name": name, "base_path": f"/{name}", "upstream": upstream}

        apis = [
            api("refused", f"http://127.0.0.1:{free_port()}"),
            api("blackhole", hole),
            api("slow", slow),
            api("garbage", junk),
            api("early", early),
            api("short", short),
            api("early-answer", early_answer),
            api("deaf", deaf),
        ]
        with serve_asgi(build_gateway(make_config(tmp_path, apis))) as gateway:
            yield gateway.url


@pytest.mark.parametrize(
    ("name", "status", "detail"),
    [
        ("refused", 502, "could not be reached"),
        ("blackhole", 504, "did not answer in time"),
        ("slow", 504, "did not answer in time"),
        ("garbage", 502, "sent an invalid response"),
        ("early", 502, "sent an invalid response"),
        ("short", 502, "sent an invalid response"),
    ],
)
def test_failure_is_a_problem(gw, name, status, detail):
    started = time.monotonic()
    response = httpx.get(f"{gw}/{name}/x", headers={"X-Request-ID": "fail-1"}, timeout=10)
    assert time.monotonic() - started < 2.5
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "fail-1"
    problem = response.json()
    assert problem["status"] == status
    assert problem["detail"] == f"The upstream service of API '{name}' {detail}."


UPLOAD = b"u" * (16 << 20)  # far more than the socket buffers hold


def test_an_early_answer_to_an_upload_is_passed_on(gw):
    response = httpx.post(f"{gw}/early-answer/x", content=UPLOAD, timeout=10)
    assert response.status_code == 413
    assert response.text == "too big!"


def test_an_upstream_that_stops_reading_the_body_times_out(gw):
    started = time.monotonic()
    response = httpx.post(f"{gw}/deaf/x", content=iter([UPLOAD]), timeout=10)
    assert time.monotonic() - started < 2.5
    assert response.status_code == 504
    assert response.json()["detail"] == "The upstream service of API 'deaf' did not answer in time."
