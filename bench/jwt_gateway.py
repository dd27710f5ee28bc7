"""CPU µs per request of the whole gateway path with the jwt policy: none vs cache hit vs miss.

    .venv/bin/python bench/jwt_gateway.py [--requests 5000] [--rounds 3]

Calls `Gateway.__call__` in-process (32 requests in flight) with the real registry, the
built-in OAuth server's key ring (RS256) and real aiohttp forwarding to an upstream in
another process, and reports this process's CPU time per request (`time.process_time`,
so the upstream and other processes on the machine are not counted). The difference
between the rows is what the jwt policy adds on the real path.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import jwt

from gateway.app import Gateway
from gateway.loading import validate_config
from gateway.stack import build_gateway

IN_FLIGHT = 32
UPSTREAM = """
import uvicorn
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"{}"})
uvicorn.run(app, host="127.0.0.1", port=%d, log_level="warning", access_log=False)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def config(tmp: Path, upstream: str, jwt_policy: dict[str, Any] | None) -> Any:
    (tmp / "c.yaml").write_text("openapi: 3.1.0\ninfo: {title: b, version: '1'}\npaths: {}\n")
    api: dict[str, Any] = {
        "name": "orders",
        "tier": "experience",
        "contract": "c.yaml",
        "upstream": {"targets": [upstream]},
    }
    api["policies"] = {"request-validation": False}  # the contract documents nothing
    if jwt_policy is not None:
        api["policies"]["jwt"] = jwt_policy
    raw = {"access_log": False, "registry_url": f"sqlite:///{tmp}/registry.db", "apis": [api]}
    return validate_config(raw, tmp / "tiergate.yaml", env={})


def mint(gateway: Gateway) -> str:
    ring = gateway.services.issuer
    kid, alg, key = ring.signing_key()
    now = int(time.time())
    claims = {
        "iss": ring.issuer,
        "sub": "bench",
        "aud": ring.audience,
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "client_id": "bench",
        "scope": "orders:read",
        "tg_kind": "client",
    }
    return jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, "typ": "at+jwt"})


async def drive(gateway: Gateway, token: str | None, requests: int) -> float:
    headers = [(b"host", b"bench")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/experience/orders/v1/data",
        "raw_path": b"/experience/orders/v1/data",
        "query_string": b"",
        "headers": headers,
        "scheme": "http",
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
        "http_version": "1.1",
    }
    statuses: list[int] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def worker(count: int) -> None:
        for _ in range(count):
            await gateway(dict(scope), receive, send)

    await worker(50)  # warm up pools and caches
    started = time.process_time()
    await asyncio.gather(*(worker(requests // IN_FLIGHT) for _ in range(IN_FLIGHT)))
    spent = time.process_time() - started
    assert set(statuses) == {200}, set(statuses)
    return spent / (requests // IN_FLIGHT * IN_FLIGHT) * 1e6


async def scenario(tmp: Path, upstream: str, policy: dict | None, requests: int) -> float:
    gateway = build_gateway(config(tmp, upstream, policy))
    await gateway.startup()
    try:
        return await drive(gateway, mint(gateway) if policy is not None else None, requests)
    finally:
        await gateway.shutdown()


async def main(requests: int, rounds: int) -> None:
    port = free_port()
    upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM % port])
    try:
        await asyncio.sleep(1.5)
        cases = {
            "no policy": None,
            "jwt, cache hit": {"scopes": ["orders:read"]},
            "jwt, cache miss (cache_size 0)": {"scopes": ["orders:read"], "cache_size": 0},
        }
        best = {name: float("inf") for name in cases}
        for _ in range(rounds):
            for name, policy in cases.items():
                with tempfile.TemporaryDirectory() as tmp:
                    value = await scenario(Path(tmp), f"http://127.0.0.1:{port}", policy, requests)
                best[name] = min(best[name], value)
        base = best["no policy"]
        for name, value in best.items():
            print(f"{name:32s} {value:7.1f} CPU µs/request  (+{value - base:5.1f} µs)")
    finally:
        upstream.terminate()
        upstream.wait(10)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.requests, args.rounds))
