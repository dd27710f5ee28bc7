"""Ambiguous framing is refused with 400 and the connection closed, and the upstream
(a counting app on its own uvicorn) never sees the request. Raw sockets throughout."""

import socket

import pytest

from tests.support.configs import make_config
from tests.support.edge import CountingUpstream, exchange, read_response, serve_gateway, status_of
from tests.support.servers import serve_asgi

P = b"/experience/shop/v1/items"
CASES = {
    "content-length and transfer-encoding": b"POST %s HTTP/1.1\r\nHost: a\r\n"
    b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "differing duplicate content-length": b"POST %s HTTP/1.1\r\nHost: a\r\n"
    b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    "content-length list": b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\nhello!",
    "unknown coding": b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n0\r\n\r\n",
    "unknown coding before chunked": b"POST %s HTTP/1.1\r\nHost: a\r\n"
    b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
    "lookalike coding": b"POST %s HTTP/1.1\r\nHost: a\r\n"
    b"Transfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "repeated coding": b"POST %s HTTP/1.1\r\nHost: a\r\n"
    b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "repeated transfer-encoding header": b"POST %s HTTP/1.1\r\nHost: a\r\n"
    b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "transfer-encoding in HTTP/1.0": b"POST %s HTTP/1.0\r\nHost: a\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "obs-fold": b"GET %s HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n",
    "obs-fold with tab": b"GET %s HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n",
    "missing host": b"GET %s HTTP/1.1\r\nX-A: b\r\n\r\n",
    "duplicate host": b"GET %s HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "host list": b"GET %s HTTP/1.1\r\nHost: a, b\r\n\r\n",
    "host with path": b"GET %s HTTP/1.1\r\nHost: a/b\r\n\r\n",
    "whitespace before colon": b"GET %s HTTP/1.1\r\nHost: a\r\nX-A : b\r\n\r\n",
    "bare LF": b"GET %s HTTP/1.1\nHost: a\n\n",
}
ACCEPTED = {
    "plain": b"GET %s HTTP/1.1\r\nHost: shop.example:8080\r\n\r\n",
    "IPv6 host": b"GET %s HTTP/1.1\r\nHost: [::1]:80\r\n\r\n",
    "chunked": b"POST %s HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n"
    b"2\r\nhi\r\n0\r\n\r\n",
    "equal duplicate content-length": b"POST %s HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
    "HTTP/1.0 without host": b"GET %s HTTP/1.0\r\n\r\n",
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    app = CountingUpstream()
    with serve_asgi(app) as up:
        targets = {"targets": [up.url]}
        config = make_config(
            tmp_path_factory.mktemp("framing"), [{"name": "shop", "upstream": targets}]
        )
        with serve_gateway(config) as gw:
            yield gw, app


@pytest.fixture
def gateway(servers):
    return servers[0]


@pytest.fixture
def upstream(servers):
    servers[1].requests.clear()
    return servers[1]


@pytest.mark.parametrize("case", sorted(CASES))
def test_ambiguous_framing_is_refused_and_never_forwarded(gateway, upstream, case):
    data, closed = exchange(gateway.port, CASES[case] % P, timeout=2)
    assert status_of(data) == 400, data
    assert closed
    assert upstream.requests == []


@pytest.mark.parametrize("case", sorted(ACCEPTED))
def test_well_framed_requests_pass(gateway, upstream, case):
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=5) as sock:
        sock.sendall(ACCEPTED[case] % P)
        data = read_response(sock)
    assert status_of(data) == 200, data
    assert len(upstream.requests) == 1


def test_valid_hosts_are_remembered_within_a_cap_and_invalid_ones_never():
    from gateway import framing

    def problem(host: bytes):
        return framing.framing_problem({"headers": [(b"host", host)], "http_version": "1.1"})

    framing._VALID_HOSTS.clear()
    assert problem(b"api.example:8080") is None and problem(b"api.example:8080") is None
    assert b"api.example:8080" in framing._VALID_HOSTS
    for _ in range(2):  # refused the second time too: a refusal is never remembered
        assert problem(b"bad host/x").status == 400
    assert b"bad host/x" not in framing._VALID_HOSTS
    for index in range(framing.VALID_HOSTS_KEPT + 1):
        assert problem(b"h%d" % index) is None
    assert len(framing._VALID_HOSTS) <= framing.VALID_HOSTS_KEPT
