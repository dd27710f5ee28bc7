"""The lean HTTP/1.1 upstream client against real servers: httpbin and raw sockets."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from gateway.proxy.errors import UpstreamConnectError, UpstreamProtocolError, UpstreamTimeout
from gateway.proxy.h1_transport import H1Transport
from gateway.proxy.transport import UpstreamRequest
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import free_port, serve_asgi


def _request(target: str, path: str, method: str = "GET", body=None, headers=None, read=5.0):
    return UpstreamRequest(method, target, path, headers or [], body, 2.0, read)


async def _read(response) -> bytes:
    try:
        return b"".join([chunk async for chunk in response.iter_body()])
    finally:
        await response.aclose()


@contextlib.asynccontextmanager
async def raw_server(
    handler: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[str]:
    """A TCP server that answers whatever bytes the test writes."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.close()
        await server.wait_closed()


async def _read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def test_get_post_head_and_status_without_body(httpbin_url):
    transport = H1Transport()
    try:
        r = await transport.send(_request(httpbin_url, "/get?a=1", headers=[(b"x-t", b"v")]))
        assert r.status == 200
        body = json.loads(await _read(r))
        assert body["args"] == {"a": "1"} and body["headers"]["X-T"] == "v"
        r = await transport.send(_request(httpbin_url, "/post", "POST", body=b'{"k": 2}'))
        assert json.loads(await _read(r))["json"] == {"k": 2}
        r = await transport.send(_request(httpbin_url, "/get", "HEAD"))
        assert r.status == 200 and dict(r.headers)[b"content-length"] != b"0"
        assert await _read(r) == b""
        r = await transport.send(_request(httpbin_url, "/status/204"))
        assert r.status == 204 and await _read(r) == b""
        # The connection survived HEAD and 204 and still parses the next response.
        r = await transport.send(_request(httpbin_url, "/status/418"))
        assert r.status == 418
        await _read(r)
    finally:
        await transport.aclose()


async def _echo(scope, receive, send):
    """Answers the request body and its framing headers (werkzeug refuses chunked uploads)."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    framing = [v for k, v in scope["headers"] if k in (b"transfer-encoding", b"content-length")]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"|".join([*framing, body])})


async def test_streams_a_chunked_request_body_and_a_long_response(httpbin_url):
    transport = H1Transport()

    async def upload() -> AsyncIterator[bytes]:
        for index in range(3):
            yield b"part%d-" % index

    try:
        with serve_asgi(_echo, lifespan="off") as echo:
            r = await transport.send(_request(echo.url, "/", "POST", body=upload()))
            assert await _read(r) == b"chunked|part0-part1-part2-"
            r = await transport.send(_request(echo.url, "/", "POST", body=b"whole"))
            assert await _read(r) == b"5|whole"
            # A long body with a Content-Length is streamed with that length, not chunked.
            sized = [(b"content-length", b"18")]
            r = await transport.send(_request(echo.url, "/", "POST", body=upload(), headers=sized))
            assert await _read(r) == b"18|part0-part1-part2-"
        r = await transport.send(_request(httpbin_url, "/stream-bytes/102400?chunk_size=4096"))
        assert len(await _read(r)) == 102400
    finally:
        await transport.aclose()


async def test_reuses_connections_and_recovers_from_a_stale_one():
    peers: list[int] = []

    async def handler(reader, writer):
        peers.append(writer.get_extra_info("peername")[1])
        first = len(peers) == 1
        try:
            while True:
                await _read_head(reader)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
                if first:
                    return  # closed after one response, without saying so
        except asyncio.IncompleteReadError:
            return
        finally:
            writer.close()

    transport = H1Transport()
    async with raw_server(handler) as url:
        try:
            for _ in range(4):
                response = await transport.send(_request(url, "/"))
                assert await _read(response) == b"ok"
        finally:
            await transport.aclose()
    assert len(peers) == 2  # one stale connection replaced, then kept alive


async def test_body_until_close_connection_close_and_interim_responses():
    async def handler(reader, writer):
        head = await _read_head(reader)
        if b"/eof" in head:
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil-the-end")
        else:
            writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            writer.write(b"HTTP/1.1 201 Created\r\ncontent-length: 4\r\n\r\ndone")
        await writer.drain()
        writer.close()

    transport = H1Transport()
    async with raw_server(handler) as url:
        try:
            response = await transport.send(_request(url, "/eof"))
            assert await _read(response) == b"until-the-end"
            response = await transport.send(_request(url, "/interim"))
            assert response.status == 201 and await _read(response) == b"done"
        finally:
            await transport.aclose()


async def test_failures_map_to_upstream_errors():
    async def handler(reader, writer):
        head = await _read_head(reader)
        if b"/garbage" in head:
            writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        elif b"/cut" in head:
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nshort")
        else:
            await asyncio.sleep(3)  # /slow: never answers in time
        await writer.drain()
        writer.close()

    transport = H1Transport()
    async with raw_server(handler) as url:
        try:
            with pytest.raises(UpstreamProtocolError):
                await transport.send(_request(url, "/garbage"))
            with pytest.raises(UpstreamTimeout):
                await transport.send(_request(url, "/slow", read=0.3))
            response = await transport.send(_request(url, "/cut"))
            with pytest.raises(UpstreamProtocolError):
                await _read(response)
            with pytest.raises(UpstreamConnectError):
                await transport.send(_request(f"http://127.0.0.1:{free_port()}", "/"))
        finally:
            await transport.aclose()


def test_gateway_forwards_through_it(tmp_path, httpbin_url):
    config = make_config(tmp_path, [{"name": "bin", "upstream": {"targets": [httpbin_url]}}])
    with serve_asgi(build_gateway(config)) as gw, httpx.Client(base_url=gw.url) as client:
        r = client.get("/experience/bin/v1/headers?show_env=1", headers={"Connection": "x-drop"})
        headers = r.json()["headers"]
        assert r.status_code == 200
        assert headers["Host"] == httpbin_url.removeprefix("http://")
        assert "X-Drop" not in headers and headers["Via"] == "1.1 tiergate"
        assert "Accept-Encoding" in headers  # the client's, passed through unchanged
        r = client.head("/experience/bin/v1/get")
        assert r.status_code == 200 and r.content == b""
        r = client.get("/experience/bin/v1/stream-bytes/102400?chunk_size=1024")
        assert len(r.content) == 102400


async def _one_connection_answering_after(delays: list[float]):
    """A server answering its n-th request after delays[n] seconds, on one connection."""
    peers: list[int] = []

    async def handler(reader, writer):
        peers.append(writer.get_extra_info("peername")[1])
        try:
            for delay in delays:
                await _read_head(reader)
                await asyncio.sleep(delay)
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                await writer.drain()
            await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    return handler, peers


async def test_a_shorter_read_timeout_on_a_reused_connection_still_fires():
    # The connection's timer was armed for the first request's 30 s; the second request
    # on the same connection must time out after its own 0.3 s.
    handler, peers = await _one_connection_answering_after([0.0, 5.0])
    transport = H1Transport()
    async with raw_server(handler) as url:
        try:
            assert await _read(await transport.send(_request(url, "/", read=30.0))) == b"ok"
            started = asyncio.get_running_loop().time()
            with pytest.raises(UpstreamTimeout):
                await transport.send(_request(url, "/", read=0.3))
            assert asyncio.get_running_loop().time() - started < 2.0
        finally:
            await transport.aclose()
    assert len(peers) == 1


async def test_a_timer_armed_for_an_earlier_read_does_not_cut_a_later_one_short():
    # The first request arms the connection's timer for 0.4 s from then; the second starts
    # at once with 1.5 s, and its answer after 0.8 s is still in time.
    handler, peers = await _one_connection_answering_after([0.0, 0.8])
    transport = H1Transport()
    async with raw_server(handler) as url:
        try:
            assert await _read(await transport.send(_request(url, "/", read=0.4))) == b"ok"
            assert await _read(await transport.send(_request(url, "/", read=1.5))) == b"ok"
        finally:
            await transport.aclose()
    assert len(peers) == 1


async def test_a_head_response_then_others_on_the_same_connection():
    # After HEAD the parser still expects the body its Content-Length announced: the
    # next response on that connection must get a parser of its own, not that one.
    answers = [
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n",  # HEAD: no body follows
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\nfirst",
        b"HTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\nsecond",
    ]
    peers: list[int] = []

    async def handler(reader, writer):
        peers.append(writer.get_extra_info("peername")[1])
        try:
            for answer in answers:
                await _read_head(reader)
                writer.write(answer)
                await writer.drain()
            await reader.read()
        except (asyncio.IncompleteReadError, ConnectionError):
            return
        finally:
            writer.close()

    transport = H1Transport()
    async with raw_server(handler) as url:
        try:
            head = await transport.send(_request(url, "/", "HEAD"))
            assert head.status == 200 and await _read(head) == b""
            assert await _read(await transport.send(_request(url, "/"))) == b"first"
            no_content = await transport.send(_request(url, "/"))
            assert no_content.status == 204 and await _read(no_content) == b""
            assert await _read(await transport.send(_request(url, "/"))) == b"second"
        finally:
            await transport.aclose()
    assert len(peers) == 1  # all four on one connection
