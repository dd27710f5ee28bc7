"""Active health checks take a failing target out and bring it back."""

from __future__ import annotations

import time

import httpx

from gateway.stack import build_gateway
from tests.support.configs import make_config
from tests.support.servers import serve_asgi
from tests.support.upstreams import echo


class Flaky:
    """Echo, except /healthz answers 503 while `sick` is set."""

    def __init__(self) -> None:
        self.sick = False
        self.probes = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and scope["path"] == "/healthz":
            self.probes += 1
            status = 503 if self.sick else 200
            await send({"type": "http.response.start", "status": status, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        await echo(scope, receive, send)


def wait_for(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def test_health_check_takes_a_target_out_and_back(tmp_path):
    flaky = Flaky()
    check = {"interval": 0.1, "timeout": 1, "healthy_threshold": 2, "unhealthy_threshold": 1}
    with serve_asgi(flaky) as sick, serve_asgi(echo) as good:
        upstream = {"targets": [sick.url, good.url], "health_check": check, "retries": 0}
        config = make_config(tmp_path, [{"name": "svc", "base_path": "/svc", "upstream": upstream}])
        with serve_asgi(build_gateway(config)) as gw:

            def healthy() -> list[bool]:
                targets = httpx.get(f"{gw.url}/readyz").json()["apis"]["svc"]
                return [t["healthy"] for t in targets]

            wait_for(lambda: flaky.probes >= 2)
            assert healthy() == [True, True]
            flaky.sick = True
            wait_for(lambda: healthy() == [False, True])
            ports = {httpx.get(f"{gw.url}/svc/x").json()["port"] for _ in range(4)}
            assert ports == {good.port}
            flaky.sick = False
            wait_for(lambda: healthy() == [True, True])
            ports = {httpx.get(f"{gw.url}/svc/x").json()["port"] for _ in range(4)}
            assert ports == {sick.port, good.port}
