"""Policy request-size: config validation, then 413/408 over real sockets."""

import socket
import time

import httpx
import pytest

from gateway.config.errors import ConfigError
from tests.support.configs import make_config
from tests.support.edge import (
    exchange,
    read_until_close,
    serve_gateway,
    status_of,
    upstream_fixture,  # noqa: F401 - the `upstream` fixture
)

PATH = b"/experience/shop/v1/items"


def _config(tmp_path, url, policy):
    return make_config(
        tmp_path,
        [{"name": "shop", "upstream": {"targets": [url]}, "policies": {"request-size": policy}}],
    )


def test_config_is_validated(tmp_path):
    with pytest.raises(ConfigError) as error:
        _config(tmp_path, "http://127.0.0.1:1", {"max_body_bytes": -1, "body_timeot": 3})
    text = str(error.value)
    assert "apis[0].policies.request-size.max_body_bytes" in text
    assert "apis[0].policies.request-size.body_timeot: unknown key" in text


def test_unconfigured_policy_is_absent(tmp_path):
    config = make_config(tmp_path, [{"name": "shop", "upstream": {"targets": ["http://h:1"]}}])
    assert config.apis[0].policy_configs == {}


def test_declared_length_over_limit_is_refused_before_reading(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, {"max_body_bytes": 100})
    with serve_gateway(config) as gw:
        head = b"POST " + PATH + b" HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\n"
        data, closed = exchange(gw.port, head)  # body never sent: refused on the header alone
        assert status_of(data) == 413 and closed
        assert b"exceeds 100 bytes" in data
        ok = httpx.post(gw.url + PATH.decode(), content=b"x" * 100)
        assert ok.status_code == 200 and ok.json()["body"] == "x" * 100
    assert len(upstream.requests) == 1


def test_chunked_body_is_cut_while_streaming(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, {"max_body_bytes": 3000})
    with serve_gateway(config) as gw:

        def chunks(n):
            for _ in range(n):
                yield b"y" * 1000

        big = httpx.post(gw.url + PATH.decode(), content=chunks(10))
        assert big.status_code == 413, big.text
        assert big.headers["connection"] == "close"
        assert big.headers["content-type"] == "application/problem+json"
        small = httpx.post(gw.url + PATH.decode(), content=chunks(3))
        assert small.status_code == 200 and len(small.json()["body"]) == 3000
    assert [len(r["body"]) for r in upstream.requests] == [3000]


def test_slow_body_gets_408_and_the_connection_closed(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, {"body_timeout": 1.0})
    with serve_gateway(config) as gw, socket.create_connection(("127.0.0.1", gw.port)) as slow:
        started = time.monotonic()
        slow.sendall(b"POST " + PATH + b" HTTP/1.1\r\nHost: a\r\nContent-Length: 50\r\n\r\nabc")
        assert httpx.post(gw.url + PATH.decode(), content=b"fast").status_code == 200
        data, closed = read_until_close(slow, 3.0)
        assert status_of(data) == 408 and closed, data
        assert 0.9 <= time.monotonic() - started < 2.0
    assert [r["body"] for r in upstream.requests] == ["fast"]


def test_slow_chunked_body_gets_408(tmp_path, upstream):
    config = _config(tmp_path, upstream.url, {"body_timeout": 1.0})
    with serve_gateway(config) as gw, socket.create_connection(("127.0.0.1", gw.port)) as slow:
        slow.sendall(
            b"POST " + PATH + b" HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(3):
            slow.sendall(b"1\r\nz\r\n")
            time.sleep(0.45)
        data, closed = read_until_close(slow, 2.0)
        assert status_of(data) == 408 and closed, data
