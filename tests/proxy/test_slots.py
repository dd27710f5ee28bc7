"""The cap on requests in flight per target, its bounded queue, and the 503 beyond it."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from gateway.config.models import ConnectionLimitsConfig
from gateway.proxy.errors import UPSTREAM_SATURATED, UpstreamSaturated
from gateway.proxy.slots import ConnectionSlots
from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi


class Slow:
    """Answers after `delay` seconds; remembers the most requests it had at once."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.active = 0
        self.peak = 0
        self.hits = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return
        self.hits += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        try:
            await asyncio.sleep(self.delay)
        finally:
            self.active -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def gateway_for(tmp_path, url, limits, connect=2.0):
    upstream = {"targets": [url], "connection_limits": limits, "timeouts": {"connect": connect}}
    api = {"name": "svc", "base_path": "/svc", "upstream": upstream}
    return serve_asgi(build_gateway(make_config(tmp_path, [api])))


def _burst(url: str, count: int) -> list[httpx.Response]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: httpx.get(url, timeout=10), range(count)))


def test_over_the_cap_and_the_queue_is_503_with_retry_after(tmp_path):
    slow = Slow(1.5)
    limits = {"max_connections": 2, "max_pending": 1, "retry_after": 7}
    with serve_asgi(slow) as upstream, gateway_for(tmp_path, upstream.url, limits) as gw:
        responses = _burst(f"{gw.url}/svc/x", 4)
        assert sorted(r.status_code for r in responses) == [200, 200, 200, 503]
        refused = next(r for r in responses if r.status_code == 503)
        assert refused.headers["retry-after"] == "7"
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["detail"] == UPSTREAM_SATURATED.format(api="svc", retry_after=7)
        assert slow.peak == 2 and slow.hits == 3
        ready = httpx.get(f"{gw.url}/readyz").json()["apis"]["svc"][0]
        assert ready["breaker"] == "closed"  # the gateway's own limit is not the target's fault


def test_a_queued_request_waits_at_most_the_connect_timeout(tmp_path):
    slow = Slow(1.5)
    limits = {"max_connections": 1, "max_pending": 4}
    with serve_asgi(slow) as upstream, gateway_for(tmp_path, upstream.url, limits, 0.3) as gw:
        started = time.monotonic()
        with ThreadPoolExecutor(2) as pool:
            first = pool.submit(httpx.get, f"{gw.url}/svc/x", timeout=10)
            time.sleep(0.1)
            second = pool.submit(httpx.get, f"{gw.url}/svc/x", timeout=10)
            assert second.result().status_code == 503
            assert time.monotonic() - started < 1.2
            assert first.result().status_code == 200
        assert slow.hits == 1
        slow.delay = 0
        assert httpx.get(f"{gw.url}/svc/x").status_code == 200  # every slot came back


async def test_slots_pass_in_order_and_survive_cancellation():
    slots = ConnectionSlots(ConnectionLimitsConfig(max_connections=1, max_pending=2))
    await slots.acquire(1)
    order: list[str] = []

    async def take(name: str) -> None:
        await slots.acquire(1)
        order.append(name)

    first = asyncio.ensure_future(take("first"))
    gone = asyncio.ensure_future(take("gone"))
    await asyncio.sleep(0)
    with pytest.raises(UpstreamSaturated):
        await slots.acquire(1)  # the queue is full
    gone.cancel()  # a client that went away while queued
    slots.release()
    await first
    assert order == ["first"] and slots.active == 1
    slots.release()
    assert slots.active == 0
    with pytest.raises(asyncio.CancelledError):
        await gone
