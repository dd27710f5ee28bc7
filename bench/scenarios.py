"""Tiergate scenarios of the benchmark: THE one place their configs live.

==========================================================================
  SCENARIO CONFIGS — edit here when a policy's config shape changes.
  The policy shapes below (jwt, rate-limit, plans) validate against the
  config models merged on main as of 2026-11-27 08:30 UTC.
  A scenario whose policies are not in gateway.policies.POLICIES is skipped.
==========================================================================
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

API_NAME = "bench"
API_PREFIX = f"/experience/{API_NAME}/v1"  # default base path of an experience API
UPSTREAM_PATH = "/data.json"  # what the upstream nginx answers with JSON_BODY
JWKS_PATH = "/.well-known/jwks.json"  # also served by the upstream nginx
ISSUER = "https://issuer.bench.tiergate.invalid"
AUDIENCE = "tiergate-bench"
BENCH_PLAN = "bench"
# ~200 bytes: the response every system under test passes through.
JSON_BODY = json.dumps(
    {
        "id": 42,
        "sku": "TG-000042",
        "name": "Bench widget",
        "price": {"amount": 1999, "currency": "EUR"},
        "stock": 17,
        "tags": ["bench", "json", "small"],
        "updated": "2026-01-01T00:00:00Z",
        "warehouse": "north-1",
    },
    separators=(",", ":"),
)


@dataclass
class Scenario:
    name: str  # shown in the table
    policies: dict[str, Any] = field(default_factory=dict)  # apis[].policies
    access_log: bool = False
    jwt: bool = False  # send `Authorization: Bearer <token>`
    redis: bool = False  # rate-limit storage: the bench's own redis-server (else memory://)
    sync: str | None = None  # rate_limiting.sync: Redis approximate mode (else exact)
    workers: int = 1  # `workers:` processes sharing the port (all on the SUT's one core)

    def needs(self) -> list[str]:
        return sorted(self.policies)


def scenarios(upstream_url: str) -> list[Scenario]:
    """Every Tiergate scenario, in the order they run."""
    jwt_policy = {
        # jwt policy (issue 4): one external issuer by JWKS URL (served by the upstream).
        "issuers": [
            {
                "issuer": ISSUER,
                "jwks_uri": upstream_url + JWKS_PATH,
                "audience": AUDIENCE,
                "algorithms": ["RS256"],
            }
        ],
    }
    rate_limit_policy = {
        # rate-limit policy (issue 5): the token's consumer is counted against the plan
        # BENCH_PLAN (an external issuer cannot name a plan, so it is the default plan).
        "default_plan": BENCH_PLAN,
    }
    return [
        Scenario("tiergate"),
        Scenario("tiergate+log", access_log=True),
        Scenario("tiergate+jwt", policies={"jwt": jwt_policy}, jwt=True),
        Scenario(
            "tiergate+jwt+rl+log",
            policies={"jwt": jwt_policy, "rate-limit": rate_limit_policy},
            access_log=True,
            jwt=True,
        ),
        Scenario(
            # The same with per-operation config (a scope and a limit for the operation):
            # what the gateway resolves once per request and the policies look up.
            "tiergate+jwt+rl+log+ops",
            policies={
                "jwt": {**jwt_policy, "operation_scopes": {f"GET {UPSTREAM_PATH}": ["bench:read"]}},
                "rate-limit": {
                    **rate_limit_policy,
                    "operations": {f"GET {UPSTREAM_PATH}": "1000000000/minute"},
                },
            },
            access_log=True,
            jwt=True,
        ),
        Scenario(
            # Redis exact mode: one script call (one round trip) per request.
            "tiergate+jwt+rl+log+redis",
            policies={"jwt": jwt_policy, "rate-limit": rate_limit_policy},
            access_log=True,
            jwt=True,
            redis=True,
        ),
        Scenario(
            # Redis approximate mode: local counts, one batch to Redis per 100 ms.
            "tiergate+jwt+rl+log+redis-sync",
            policies={"jwt": jwt_policy, "rate-limit": rate_limit_policy},
            access_log=True,
            jwt=True,
            redis=True,
            sync="100ms",
        ),
        # Two workers on the SUT's one core: what the supervisor and a second event loop
        # cost where there is no second core to use (on a many-core machine, N workers
        # serve about N times one's rps).
        Scenario("tiergate x2 workers", workers=2),
        Scenario(
            "tiergate+jwt+rl+log+redis x2 workers",
            policies={"jwt": jwt_policy, "rate-limit": rate_limit_policy},
            access_log=True,
            jwt=True,
            redis=True,
            workers=2,
        ),
    ]


def gateway_config(
    scenario: Scenario,
    upstream_url: str,
    port: int,
    admin_port: int,
    workdir: str,
    redis_url: str | None = None,
) -> dict[str, Any]:
    """The tiergate.yaml of one scenario (written next to a minimal contract)."""
    api: dict[str, Any] = {
        "name": API_NAME,
        "tier": "experience",
        "contract": "contract.yaml",
        "upstream": {"targets": [upstream_url]},
    }
    # The minimal contract documents the one operation the bench calls (every request is
    # resolved to it); the bench measures forwarding, so the experience API's default
    # request validation is turned off.
    api["policies"] = {"request-validation": False, **scenario.policies}
    config: dict[str, Any] = {
        "listeners": {
            "public": {"host": "127.0.0.1", "port": port},
            "admin": {"host": "127.0.0.1", "port": admin_port},
        },
        "registry_url": f"sqlite:///{workdir}/registry.db",
        "access_log": scenario.access_log,
        "apis": [api],
    }
    if "rate-limit" in scenario.policies:
        # High enough never to refuse: the bench measures the cost of counting.
        config["plans"] = {BENCH_PLAN: {"limits": ["1000000000/minute"]}}
    if scenario.redis:
        assert redis_url, f"{scenario.name} needs the bench's redis-server"
        config["limits_storage"] = redis_url
        config["rate_limiting"] = {"key_prefix": f"bench-{port}"}
        if scenario.sync:
            config["rate_limiting"]["sync"] = scenario.sync
    if scenario.workers > 1:
        config["workers"] = scenario.workers
        if not scenario.redis:  # memory:// storage: each worker counts alone
            config["rate_limiting"] = {"per_worker": True}
    return config


CONTRACT = """openapi: 3.1.0
info: {title: bench, version: "1.0"}
x-tier: experience
servers: [{url: /experience/bench/v1}]
paths:
  /data.json:
    get:
      responses:
        "200": {description: a small JSON document}
"""


class JwtMaterial:
    """An RS256 key pair, its JWKS (served by the upstream) and one signed token."""

    def __init__(self) -> None:
        import jwt
        from cryptography.hazmat.primitives.asymmetric import rsa

        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": "bench-1", "use": "sig", "alg": "RS256"})
        self.jwks = json.dumps({"keys": [jwk]}, separators=(",", ":"))
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "bench-client",
            "aud": AUDIENCE,
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
            "jti": "bench-token-1",
            "client_id": "bench-client",
            "scope": "bench:read",
        }
        self.token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "bench-1"})
