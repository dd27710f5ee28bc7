"""WebSocket upgrades through the gateway with the `websockets` client: auth, the rate
limit and the connection cap at the upgrade (refusals are problem+json), echo both ways,
close codes passed through either way, message size and idle limits."""

from __future__ import annotations

import asyncio
import json
import os
import threading

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.auth_estate import identity_gateway
from tests.support.servers import serve_asgi


class EchoUpstream:
    """An ASGI WebSocket echo with a few commands; remembers how clients closed."""

    def __init__(self) -> None:
        self.closed: list[int] = []
        self.connected = threading.Event()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        protocols = scope.get("subprotocols") or []
        await send({"type": "websocket.accept", "subprotocol": protocols[0] if protocols else None})
        self.connected.set()
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                self.closed.append(message.get("code", 0))
                return
            text = message.get("text")
            if text == "whoami":
                await send({"type": "websocket.send", "text": json.dumps(headers)})
            elif text is not None and text.startswith("close:"):
                await send({"type": "websocket.close", "code": int(text[6:]), "reason": "bye"})
                return
            elif text == "big":
                await send({"type": "websocket.send", "text": "x" * 4096})
            elif text is not None:
                await send({"type": "websocket.send", "text": text})
            else:
                await send({"type": "websocket.send", "bytes": message["bytes"]})


@pytest.fixture(scope="module")
def estate(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ws")
    upstream_app = EchoUpstream()
    with serve_asgi(upstream_app) as upstream:
        api = {
            "name": "chat",
            "base_path": "/chat",
            "upstream": {"targets": [upstream.url]},
            "websocket": {
                "max_message_bytes": 1024,
                "idle_timeout": 1.5,
                "max_connections_per_consumer": 2,
            },
            "policies": {"api-key": {}, "rate-limit": {}},
        }
        plans = {"gold": {"limits": ["1000/minute"]}, "tiny": {"limits": ["2/minute"]}}
        with identity_gateway(tmp_path, [api], plans=plans) as gw:

            async def keys(registry):
                gold = await registry.create_api_key("acme", "gold", ["chat"])
                tiny = await registry.create_api_key("small", "tiny", ["chat"])
                return gold[1], tiny[1]

            gold, tiny = gw.registry(keys)
            yield {
                "url": gw.url.replace("http://", "ws://") + "/chat/room",
                "gold": gold,
                "tiny": tiny,
                "upstream": upstream_app,
            }


def run(coroutine):
    return asyncio.run(coroutine)


def _connect(estate, key=None, **kwargs):
    headers = {"x-api-key": estate[key]} if key else {}
    return connect(estate["url"], additional_headers=headers, proxy=None, **kwargs)


def test_echo_both_ways_with_identity_and_subprotocol(estate):
    async def session():
        async with _connect(estate, "gold", subprotocols=["chat.v1"]) as ws:
            assert ws.subprotocol == "chat.v1"
            await ws.send("hello")
            assert await ws.recv() == "hello"
            await ws.send(b"\x00\x01binary")
            assert await ws.recv() == b"\x00\x01binary"
            await ws.send("whoami")
            seen = json.loads(await ws.recv())
            assert ws.response.headers["x-request-id"]
            return seen

    seen = run(session())
    assert seen["x-consumer-id"] == "acme"
    assert "x-api-key" not in seen  # the credential never reaches the upstream
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-request-id"]


def test_refusals_before_the_upgrade_are_problem_json(estate):
    async def refused(key=None, url=None):
        headers = {"x-api-key": key} if key else {}
        with pytest.raises(InvalidStatus) as error:
            async with connect(url or estate["url"], additional_headers=headers, proxy=None):
                pass
        response = error.value.response
        return response.status_code, response.headers, json.loads(response.body)

    status, headers, body = run(refused())
    assert status == 401
    assert headers["content-type"] == "application/problem+json"
    assert "API key" in body["detail"]
    assert headers["www-authenticate"].startswith("APIKey")
    status, _, body = run(refused("tg_abcdefgh_" + "x" * 43))
    assert status == 401 and body["detail"] == "The API key is not valid."
    nowhere = estate["url"].replace("/chat/room", "/nowhere")
    status, headers, body = run(refused(estate["gold"], nowhere))
    assert status == 404 and headers["content-type"] == "application/problem+json"


def test_the_rate_limit_counts_connections(estate):
    async def three():
        statuses = []
        for _ in range(3):
            try:
                async with _connect(estate, "tiny") as ws:
                    await ws.send("ping")
                    await ws.recv()
                    statuses.append(101)
            except InvalidStatus as error:
                statuses.append(error.response.status_code)
                assert error.response.headers["content-type"] == "application/problem+json"
        return statuses

    assert run(three()) == [101, 101, 429]


def test_max_connections_per_consumer(estate):
    async def crowd():
        async with _connect(estate, "gold") as one, _connect(estate, "gold") as two:
            await one.send("a")
            await two.send("b")
            assert (await one.recv(), await two.recv()) == ("a", "b")
            with pytest.raises(InvalidStatus) as error:
                async with _connect(estate, "gold"):
                    pass
            assert error.value.response.status_code == 429
            assert b"2 open WebSocket connections" in error.value.response.body
        for _ in range(40):  # slots are given back once the gateway has seen the close
            try:
                async with _connect(estate, "gold") as three:
                    await three.send("c")
                    return await three.recv()
            except InvalidStatus:
                await asyncio.sleep(0.05)
        return None

    assert run(crowd()) == "c"


def test_upstream_close_code_reaches_the_client(estate):
    async def session():
        async with _connect(estate, "gold") as ws:
            await ws.send("close:4001")
            with pytest.raises(ConnectionClosed) as error:
                await ws.recv()
            return error.value.rcvd

    received = run(session())
    assert received is not None
    assert (received.code, received.reason) == (4001, "bye")


def test_client_close_code_reaches_the_upstream(estate):
    upstream = estate["upstream"]
    before = len(upstream.closed)

    async def session():
        async with _connect(estate, "gold") as ws:
            await ws.send("hi")
            await ws.recv()
            await ws.close(4002, "done")

    run(session())
    for _ in range(50):
        if len(upstream.closed) > before:
            break
        run(asyncio.sleep(0.05))
    assert upstream.closed[before:] == [4002]


def test_messages_over_the_limit_close_with_1009(estate):
    async def too_big_from_client():
        async with _connect(estate, "gold") as ws:
            await ws.send("y" * 2048)
            with pytest.raises(ConnectionClosed) as error:
                await ws.recv()
            return error.value.rcvd.code

    async def too_big_from_upstream():
        async with _connect(estate, "gold") as ws:
            await ws.send("big")
            with pytest.raises(ConnectionClosed) as error:
                await ws.recv()
            return error.value.rcvd.code

    assert run(too_big_from_client()) == 1009
    assert run(too_big_from_upstream()) == 1009


def test_idle_connections_are_closed(estate):
    async def session():
        async with _connect(estate, "gold") as ws:
            await ws.send("hi")
            await ws.recv()
            with pytest.raises(ConnectionClosed) as error:
                await asyncio.wait_for(ws.recv(), 5)
            return error.value.rcvd

    received = run(session())
    assert received is not None and received.code == 1001
    assert "idle" in received.reason


def test_a_client_that_vanishes_closes_the_upstream(estate):
    upstream = estate["upstream"]
    before = len(upstream.closed)

    async def vanish():
        ws = await _connect(estate, "gold")
        await ws.send("hi")
        await ws.recv()
        ws.transport.abort()  # no close frame: the TCP connection just drops

    run(vanish())
    for _ in range(60):
        if len(upstream.closed) > before:
            break
        run(asyncio.sleep(0.05))
    assert len(upstream.closed) > before
    assert upstream.closed[-1] == 1001


def test_an_api_without_websocket_refuses_upgrades(tmp_path):
    with serve_asgi(EchoUpstream()) as upstream:
        api = {"name": "plain", "base_path": "/plain", "upstream": {"targets": [upstream.url]}}
        with identity_gateway(tmp_path, [api]) as gw:

            async def attempt():
                url = gw.url.replace("http://", "ws://") + "/plain/x"
                with pytest.raises(InvalidStatus) as error:
                    async with connect(url, proxy=None):
                        pass
                return error.value.response

            response = run(attempt())
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "No WebSocket endpoint is published" in json.loads(response.body)["detail"]


def test_only_the_listed_operations_accept_upgrades(tmp_path):
    from gateway.stack import build_gateway
    from tests.support.configs import make_config, write_contract

    contract = write_contract(
        tmp_path, "live", ["GET /rooms/{room}", "GET /status"], servers=[{"url": "/live"}]
    )
    with serve_asgi(EchoUpstream()) as upstream:
        api = {
            "name": "live",
            "base_path": "/live",
            "contract": contract,
            "upstream": {"targets": [upstream.url]},
            "websocket": {"operations": ["GET /rooms/{room}"]},
        }
        with serve_asgi(build_gateway(make_config(tmp_path, [api]))) as gw:
            base = gw.url.replace("http://", "ws://") + "/live"

            async def attempts():
                async with connect(base + "/rooms/r1?x=1", proxy=None) as ws:
                    await ws.send("in room")
                    echoed = await ws.recv()
                refusals = []
                for path in ("/status", "/nope"):
                    with pytest.raises(InvalidStatus) as error:
                        async with connect(base + path, proxy=None):
                            pass
                    refusals.append(error.value.response)
                return echoed, refusals

            echoed, refusals = run(attempts())
    assert echoed == "in room"
    status, unknown = refusals
    assert status.status_code == 404
    assert b"does not accept WebSocket upgrades" in status.body
    assert unknown.status_code == 404  # no such operation: the contract decides
    assert unknown.headers["content-type"] == "application/problem+json"


class Firehose:
    """Sends `count` messages of 64 KiB as fast as the connection takes them."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.sent = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return
        await receive()
        await send({"type": "websocket.accept"})
        chunk = os.urandom(65536)  # incompressible: permessage-deflate must not shrink it
        for n in range(self.count):
            await send({"type": "websocket.send", "bytes": n.to_bytes(4, "big") + chunk})
            self.sent += 1
        await receive()


def test_back_pressure_holds_the_upstream_while_the_client_does_not_read(tmp_path):
    from gateway.stack import build_gateway
    from tests.support.configs import make_config

    # 2,500 x 64 KiB = 160 MiB: far beyond what the sockets and queues on the way can
    # hold (TCP buffers here grow to 32 MiB per socket).
    firehose = Firehose(2500)
    with serve_asgi(firehose) as upstream:
        api = {
            "name": "feed",
            "base_path": "/feed",
            "upstream": {"targets": [upstream.url]},
            "websocket": {"max_message_bytes": 70000, "idle_timeout": 60},
        }
        with serve_asgi(build_gateway(make_config(tmp_path, [api]))) as gw:
            url = gw.url.replace("http://", "ws://") + "/feed/x"

            async def slow_reader():
                async with connect(url, proxy=None, max_size=70000) as ws:
                    held = -1
                    for _ in range(40):  # read nothing until the upstream stops sending
                        await asyncio.sleep(0.5)
                        if firehose.sent == held:
                            break
                        held = firehose.sent
                    numbers = [int.from_bytes((await ws.recv())[:4], "big") for _ in range(500)]
                    for _ in range(100):  # reading lets the upstream go on
                        if firehose.sent > held:
                            break
                        await asyncio.sleep(0.05)
                    return held, numbers, firehose.sent

            held, numbers, after = run(slow_reader())
    assert 0 < held < 2500, held  # the upstream was made to wait...
    assert after > held  # ...until the client read again
    assert numbers == list(range(500))  # nothing lost, nothing reordered


def test_a_policy_that_fails_at_the_upgrade_is_a_500_problem(tmp_path, monkeypatch):
    from pydantic import BaseModel

    from gateway.pipeline import PRIORITY, PolicySpec
    from gateway.policies import POLICIES
    from gateway.stack import build_gateway
    from tests.support.configs import make_config

    class Empty(BaseModel):
        pass

    class Failing:
        async def __call__(self, ctx):
            raise RuntimeError("a bug in the policy")

    spec = PolicySpec("test-failing", 800, Empty, lambda config, ctx: Failing())
    monkeypatch.setitem(POLICIES, "test-failing", spec)
    monkeypatch.setitem(PRIORITY, "test-failing", 800)
    with serve_asgi(EchoUpstream()) as upstream:
        api = {
            "name": "live",
            "base_path": "/live",
            "upstream": {"targets": [upstream.url]},
            "websocket": True,
            "policies": {"test-failing": {}},
        }
        with serve_asgi(build_gateway(make_config(tmp_path, [api]))) as gw:

            async def attempt():
                url = gw.url.replace("http://", "ws://") + "/live/x"
                with pytest.raises(InvalidStatus) as error:
                    async with connect(url, proxy=None):
                        pass
                return error.value.response

            response = run(attempt())
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert b"a bug in the policy" not in response.body
