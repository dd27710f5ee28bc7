"""Per-request CPU cost of request validation on typical experience operations.

Not a test: prints numbers. Runs the policy exactly as the gateway does (a
RequestContext per request, the compiled contract, the JSON body check through the
channel wrapper) in one event loop, without sockets, so the figure is the policy's
own cost. Usage: .venv/bin/python bench/request_validation.py [iterations]
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway.context import RequestContext  # noqa: E402
from gateway.operations import load_route_contract, resolve  # noqa: E402
from gateway.pipeline import build_chain  # noqa: E402
from gateway.policies import POLICIES  # noqa: E402
from gateway.routing import RouteTable  # noqa: E402
from gateway.services import Services  # noqa: E402
from tests.support.configs import make_config  # noqa: E402

CONTRACT = ROOT / "tests" / "policies" / "contracts" / "shop.yaml"
BODY = json.dumps({"sku": "ABC-123", "quantity": 2, "lines": [{"qty": 1}, {"qty": 3}]}).encode()
CASES = {
    "GET /orders?limit=20&status=open (query + header)": (
        "GET",
        "/experience/shop/v1/orders",
        b"limit=20&status=open",
        [(b"x-channel", b"mobile")],
        b"",
    ),
    "GET /orders/{orderId} (path param)": ("GET", "/experience/shop/v1/orders/42", b"", [], b""),
    "POST /orders (JSON body, 3 fields + 2 lines)": (
        "POST",
        "/experience/shop/v1/orders",
        b"",
        [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())],
        BODY,
    ),
}


async def run(iterations: int) -> None:
    tmp = Path(tempfile.mkdtemp())
    (tmp / "shop.yaml").write_text(CONTRACT.read_text())
    api = {"name": "shop", "contract": "shop.yaml", "upstream": {"targets": ["http://h:1"]}}
    config = make_config(tmp, [{**api, "policies": {"request-validation": {}}}])
    route = RouteTable(config.apis).routes[0]
    contract = load_route_contract(config, config.apis[0])
    (policy,) = build_chain(POLICIES, config, config.apis[0], Services(), contract)
    for name, (method, path, query, headers, body) in CASES.items():

        async def receive(body: bytes = body) -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        async def once(method=method, path=path, query=query, headers=headers) -> None:
            ctx = RequestContext(
                scope={"type": "http"},
                route=route,
                method=method,
                path=path,
                query=query,
                headers=[(b"host", b"shop"), *headers],
                request_id="r",
                client_ip="127.0.0.1",
                started=0.0,
            )
            # resolving is the gateway's part of every request: counted here as well
            ctx.operation = resolve(contract, "shop", method, route.relative_path(path))
            assert await policy(ctx) is None
            for wrap in ctx.channel_wrappers:
                wrapped, _ = wrap(receive, receive)
                await wrapped()

        for _ in range(min(1000, iterations)):
            await once()
        best = float("inf")
        for _ in range(5):
            started = time.process_time()
            for _ in range(iterations):
                await once()
            best = min(best, (time.process_time() - started) / iterations * 1e6)
        print(f"{name:52s} {best:7.1f} µs CPU/request (best of 5 x {iterations})")

    async def baseline() -> None:
        RequestContext(
            scope={},
            route=route,
            method="GET",
            path="/",
            query=b"",
            headers=[],
            request_id="r",
            client_ip="",
            started=0.0,
        )

    started = time.process_time()
    for _ in range(iterations):
        await baseline()
    cost = (time.process_time() - started) / iterations * 1e6
    print(f"{'(harness: building a RequestContext alone)':52s} {cost:7.1f} µs")


if __name__ == "__main__":
    asyncio.run(run(int(sys.argv[1]) if len(sys.argv) > 1 else 20000))
