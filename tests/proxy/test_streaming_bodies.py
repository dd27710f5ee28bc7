"""Bodies stream both ways, through HTTP and in-process targets; aborts propagate."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.upstreams import handshake, raw_server, read_head

IN_PROCESS = "asgi:tests.support.upstreams:handshake"


def chunked_then_gone(conn):
    read_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for _ in range(20):
        conn.sendall(b"10000\r\n" + b"y" * 0x10000 + b"\r\n")
    # ...and the connection drops without the terminating 0-size chunk.


def long_then_gone(conn):
    read_head(conn)
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n" + b"z" * 300_000)


@pytest.fixture(scope="module")
def gw(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("streaming")
    with (
        serve_asgi(handshake) as upstream,
        raw_server(chunked_then_gone) as chunked,
        raw_server(long_then_gone) as long,
    ):
        apis = [
            {"name": "http", "base_path": "/http", "upstream": {"targets": [upstream.url]}},
            {"name": "asgi", "base_path": "/asgi", "upstream": {"targets": [IN_PROCESS]}},
            {"name": "chunked", "base_path": "/chunked", "upstream": {"targets": [chunked]}},
            {"name": "long", "base_path": "/long", "upstream": {"targets": [long]}},
        ]
        with serve_asgi(build_gateway(make_config(tmp_path, apis))) as gateway:
            yield gateway.url


@pytest.fixture(autouse=True)
def fresh_handshake():
    handshake.reset()


@pytest.mark.parametrize("api", ["http", "asgi"])
def test_download_streams(gw, api):
    with httpx.stream("GET", f"{gw}/{api}/download", timeout=10) as response:
        chunks = response.iter_raw()
        assert next(chunks).startswith(b"first;")  # before the upstream has finished
        handshake.first_seen.set()
        rest = b"".join(chunks)
    assert rest.endswith(b"rest")
    assert handshake.events == ["client saw first chunk: True"]


@pytest.mark.parametrize("api", ["http", "asgi"])
@pytest.mark.parametrize("length", [None, 4 << 20], ids=["chunked", "content-length"])
def test_upload_streams(gw, api, length):
    def body():
        yield b"a" * 65536
        assert handshake.first_seen.wait(5), "the upstream never saw the first chunk"
        for _ in range(63):
            yield b"b" * 65536

    headers = {"content-length": str(length)} if length else {}
    response = httpx.post(f"{gw}/{api}/upload", content=body(), headers=headers, timeout=10)
    assert response.json() == {"size": 64 * 65536}


@pytest.mark.parametrize("api", ["http", "asgi"])
def test_client_disconnect_closes_the_upstream_stream(gw, api):
    host, port = gw.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET /{api}/forever HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        received = 0
        while received < 1 << 20:
            received += len(sock.recv(65536))
    assert handshake.disconnected.wait(5), "the upstream kept streaming to nobody"


def test_mid_stream_failure_aborts_a_chunked_response(gw):
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", f"{gw}/chunked/x") as r:
        assert r.status_code == 200
        r.read()


def test_mid_stream_failure_aborts_a_sized_response(gw):
    started = time.monotonic()
    with pytest.raises(httpx.RemoteProtocolError), httpx.stream("GET", f"{gw}/long/x") as r:
        assert r.headers["content-length"] == "10000000"
        r.read()
    assert time.monotonic() - started < 5


GIB = 1 << 30


def one_gib(conn):
    head = read_head(conn)
    size = GIB if b"/big" in head.split(b"\r\n", 1)[0] else 1024
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nConnection: close\r\n\r\n" % size)
    block = b"\0" * (1 << 20)
    for _ in range(size // len(block)):
        conn.sendall(block)
    conn.sendall(b"\0" * (size % len(block)))


def rss(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def test_one_gib_download_through_tiergate_up_keeps_memory_flat(tmp_path):
    from tests.support.processes import tiergate_up, write_config

    with raw_server(one_gib) as upstream:
        api = {"name": "big", "base_path": "/big", "upstream": {"targets": [upstream]}}
        config = write_config(tmp_path, [api], access_log=False)
        with tiergate_up(config) as gateway:
            assert httpx.get(f"{gateway.url}/big/small").content == b"\0" * 1024  # warm up
            baseline = peak = rss(gateway.proc.pid)
            host, port = gateway.url.removeprefix("http://").split(":")
            buffer = bytearray(1 << 20)
            received = 0
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                sock.sendall(b"GET /big/big HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                started = time.monotonic()
                reads = 0
                while count := sock.recv_into(buffer):
                    received += count
                    reads += 1
                    if reads % 64 == 0:
                        peak = max(peak, rss(gateway.proc.pid))
            elapsed = time.monotonic() - started
    growth = peak - baseline
    print(f"1 GiB in {elapsed:.1f}s, gateway RSS {baseline >> 20} MiB + {growth >> 20} MiB")
    assert received > GIB  # headers + exactly one GiB of body
    assert received - GIB < 1024
    assert growth < 50 << 20


@pytest.mark.parametrize("in_process", [False, True], ids=["http", "asgi"])
def test_client_aborting_an_upload_does_not_trip_the_breaker(tmp_path, in_process):
    with serve_asgi(handshake) as upstream:
        breaker = {"failures": 1, "cooldown": 30}
        target = IN_PROCESS if in_process else upstream.url
        # A second target, so that the first could be ejected if the abort counted.
        other = upstream.url if in_process else upstream.url.replace("127.0.0.1", "localhost")
        api = {
            "name": "up",
            "base_path": "/up",
            "upstream": {"targets": [target, other], "circuit_breaker": breaker},
        }
        with serve_asgi(build_gateway(make_config(tmp_path, [api]))) as gateway:
            host, port = gateway.url.removeprefix("http://").split(":")
            with socket.create_connection((host, int(port)), timeout=5) as sock:
                sock.sendall(
                    b"POST /up/upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"10000\r\n" + b"a" * 0x10000 + b"\r\n"
                )
                assert handshake.first_seen.wait(5)
            time.sleep(0.3)  # let the gateway notice
            targets = httpx.get(f"{gateway.url}/readyz").json()["apis"]["up"]
            response = httpx.post(f"{gateway.url}/up/upload", content=b"fine")
    assert [t["breaker"] for t in targets] == ["closed", "closed"]
    assert response.status_code == 200, response.text
    assert response.json() == {"size": 4}
