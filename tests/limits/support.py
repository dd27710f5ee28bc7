"""Test-only helpers for the rate-limit tests: an upstream, a stand-in identity policy
(the real ones come from the auth-policies branch), bursts of concurrent requests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
from pydantic import BaseModel
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.context import Identity
from gateway.pipeline import PolicySpec

UPSTREAM = "asgi:tests.limits.support:upstream"


async def _ok(request):
    return JSONResponse({"ok": True, "path": request.url.path})


upstream = Starlette(routes=[Route("/{path:path}", _ok, methods=["GET", "POST"])])


class _TestIdentityConfig(BaseModel):
    pass


def _build_test_identity(config, ctx):
    """Sets ctx.identity from `x-test-consumer: id[;plan]`: a test stand-in for the jwt /
    api-key policies, which verify credentials before rate-limit runs."""

    async def policy(ctx):
        value = ctx.header(b"x-test-consumer")
        if value:
            consumer, _, plan = value.decode().partition(";")
            ctx.identity = Identity(kind="partner", consumer_id=consumer, plan=plan or None)
        return None

    return policy


TEST_IDENTITY = PolicySpec("test-identity", 800, _TestIdentityConfig, _build_test_identity)


@contextmanager
def with_test_identity() -> Iterator[None]:
    from gateway.policies import POLICIES

    POLICIES[TEST_IDENTITY.name] = TEST_IDENTITY
    try:
        yield
    finally:
        POLICIES.pop(TEST_IDENTITY.name, None)


@dataclass(frozen=True)
class Reply:
    url: str
    status_code: int
    headers: dict[str, str]


BURST_HEADERS = (
    "ratelimit-policy",
    "ratelimit",
    "x-ratelimit-limit",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
    "retry-after",
    "content-type",
)


def burst(urls: list[str], count: int, headers: dict[str, str] | None = None) -> list[Reply]:
    """`count` concurrent GETs spread round-robin over `urls`, sent by curl --parallel
    (a client in another process, so the client's CPU does not starve the gateway)."""
    fields = "|".join(f"%header{{{name}}}" for name in BURST_HEADERS)
    # Without `next`, curl applies every header line to every URL: list them once.
    lines = [f'header = "{name}: {value}"' for name, value in (headers or {}).items()]
    for i in range(count):
        lines.append(f'url = "{urls[i % len(urls)]}"')
        lines.append('output = "/dev/null"')
        lines.append(f'write-out = "%{{url}}|%{{http_code}}|{fields}\\n"')
    result = subprocess.run(
        [
            "curl",
            "--silent",
            "--parallel",
            "--parallel-immediate",
            "--parallel-max",
            str(count),
            "--max-time",
            "60",
            "--config",
            "-",
        ],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    replies = []
    for line in result.stdout.splitlines():
        url, code, *values = line.split("|")
        found = {n: v for n, v in zip(BURST_HEADERS, values, strict=True) if v}
        replies.append(Reply(url, int(code), found))
    assert len(replies) == count, result.stderr[-2000:]
    return replies


def timed_get(client: httpx.Client, url: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.get(url)
    return response, time.perf_counter() - started
