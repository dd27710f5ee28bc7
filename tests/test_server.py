"""`tiergate up` shuts down gracefully: in-flight requests finish, then it exits."""

from __future__ import annotations

import asyncio
import signal
import threading

import httpx

from tests.support.processes import tiergate_up, write_config
from tests.support.servers import serve_asgi


class Slow:
    def __init__(self) -> None:
        self.arrived = threading.Event()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return
        self.arrived.set()
        await asyncio.sleep(1.5)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"finished"})


def test_sigterm_lets_in_flight_requests_finish(tmp_path):
    slow = Slow()
    result: dict[str, object] = {}
    with serve_asgi(slow) as upstream:
        api = {"name": "slow", "base_path": "/slow", "upstream": {"targets": [upstream.url]}}
        with tiergate_up(write_config(tmp_path, [api], access_log=False)) as gateway:

            def call() -> None:
                try:
                    result["response"] = httpx.get(f"{gateway.url}/slow/x", timeout=10)
                except httpx.HTTPError as error:
                    result["error"] = error

            client = threading.Thread(target=call)
            client.start()
            assert slow.arrived.wait(5)
            gateway.proc.send_signal(signal.SIGTERM)
            client.join(10)
            assert gateway.proc.wait(10) == 0
    response = result.get("response")
    assert isinstance(response, httpx.Response), result
    assert response.status_code == 200
    assert response.text == "finished"
