"""Micro-benchmark: CPU µs the jwt policy adds per request, verified-token cache hit vs miss.

    .venv/bin/python bench/jwt_policy.py [--n 20000]

Calls the policy directly (no sockets), as the gateway's hot path does, with RS256
and ES256 tokens of the built-in issuer. "miss" is a policy with cache_size 0, so
every request parses and verifies the token with pyjwt. Prints one line per case.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.context import RequestContext
from gateway.loading import validate_config
from gateway.pipeline import build_chain
from gateway.policies import POLICIES
from gateway.routing import RouteTable
from gateway.services import Services

ISSUER = "http://bench.tiergate"


class Issuer:
    """The built-in server's key ring interface (Services.issuer), with one key."""

    def __init__(self, kid: str, public: Any) -> None:
        self.issuer, self.audience, self._keys = ISSUER, "tiergate", {kid: public}

    def public_keys(self) -> dict[str, Any]:
        return self._keys


class Revocations:
    def is_revoked(self, jti: str) -> bool:
        return False


def make_policy(tmp: Path, cache_size: int, issuer: Issuer) -> tuple[Any, Any]:
    raw = {
        "access_log": False,
        "apis": [
            {
                "name": "orders",
                "tier": "experience",
                "upstream": {"targets": ["http://127.0.0.1:9"]},
                "policies": {
                    "request-validation": False,
                    "jwt": {
                        "scopes": ["orders:read"],
                        "cache_size": cache_size,
                    },
                },
            }
        ],
    }
    config = validate_config(raw, tmp / "tiergate.yaml", env={})
    services = Services(issuer=issuer, revocations=Revocations())
    (chain,) = [build_chain(POLICIES, config, api, services) for api in config.apis]
    verify, decide = chain  # jwt verifies the token, authorize decides on it

    async def both(ctx: Any) -> Any:
        return await verify(ctx) or await decide(ctx)

    return both, RouteTable(config.apis).routes[0]


def token(private: Any, alg: str, kid: str) -> str:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "c1",
        "aud": "tiergate",
        "iat": now,
        "exp": now + 3600,
        "jti": uuid.uuid4().hex,
        "client_id": "c1",
        "scope": "orders:read orders:write",
    }
    return jwt.encode(claims, private, algorithm=alg, headers={"kid": kid, "typ": "at+jwt"})


async def measure(policy: Any, route: Any, bearer: str, n: int) -> float:
    headers = [(b"host", b"gw"), (b"authorization", f"Bearer {bearer}".encode())]
    ctx = RequestContext(
        {"type": "http"},
        route,
        "GET",
        "/experience/orders/v1/orders/7",
        b"",
        headers,
        "r",
        "127.0.0.1",
        0.0,
    )
    assert await policy(ctx) is None and ctx.identity is not None  # warm up, and it passes
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            ctx.headers = headers
            ctx.identity = ctx.credentials = None
            await policy(ctx)
        best = min(best, time.process_time() - started)
    return best / n * 1e6


def pyjwt_decode(bearer: str, public: Any, alg: str, n: int) -> float:
    best = float("inf")
    for _ in range(3):
        started = time.process_time()
        for _ in range(n):
            jwt.decode(bearer, public, algorithms=[alg], audience="tiergate", issuer=ISSUER)
        best = min(best, time.process_time() - started)
    return best / n * 1e6


async def main(n: int) -> None:
    keys = {
        "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ES256": ec.generate_private_key(ec.SECP256R1()),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for alg, private in keys.items():
            issuer = Issuer("k1", private.public_key())
            hit_policy, route = make_policy(Path(tmp), 10_000, issuer)
            miss_policy, _ = make_policy(Path(tmp), 0, issuer)
            bearer = token(private, alg, "k1")
            hit = await measure(hit_policy, route, bearer, n)
            miss = await measure(miss_policy, route, bearer, max(n // 10, 200))
            raw = pyjwt_decode(bearer, private.public_key(), alg, max(n // 10, 200))
            print(
                f"jwt {alg}: cache hit {hit:5.1f} µs/request, miss {miss:6.1f} µs/request "
                f"(miss/hit {miss / hit:4.1f}x); bare pyjwt jwt.decode {raw:6.1f} µs"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000, help="requests per cache-hit run")
    asyncio.run(main(parser.parse_args().n))
