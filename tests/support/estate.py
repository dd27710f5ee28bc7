"""The demo estate for tests: a copy of tiergate.yaml on free ports, and the one place
that says which credentials a test request carries.

The whole estate runs with its real security (tiergate.yaml): `serve_estate` provisions,
once the gateway is up, real credentials for every API and `auth_headers(api)` returns
them — a bearer token from the gateway's /oauth/token for `mobile` (a client on the gold
plan) and, for a process or system API, a token of the service identity of an API one
tier above that depends on it; an API key (gold plan) for `partner`. A tier API run on
its own socket against the estate takes `service_env(api)` (its `svc-<api>` client).

A partial estate (`only=[...]`: some tiers run outside the gateway as their own
services, in the saga and aggregation tests) has no caller identities to admit, so it
is served without the authentication and tier policies; tests/test_estate_security.py
covers those on the whole estate.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from gateway.config.models import GatewayConfig
from gateway.loading import load_config
from tests.support.servers import free_port

ROOT = Path(__file__).resolve().parents[2]
ESTATE = ROOT / "tiergate.yaml"


AUTH_POLICIES = ("jwt", "api-key", "tier-guard", "object-binding")
TEST_PLAN = "gold"  # the contract runs send hundreds of requests a minute
MOBILE_SUPPORT = "mobile:support"  # bypass scope of mobile's bound operations
PARTNER_SUPPORT = "partner:all-accounts"  # bypass scope of partner's bound operations


@dataclass
class Credentials:
    """What requests to one served estate carry: headers per API, service clients."""

    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    services: dict[str, dict[str, str]] = field(default_factory=dict)
    partner_consumer: str = ""  # the consumer the partner key belongs to
    issuer: Any = None  # the gateway's built-in authorization server (its signing key)


_ACTIVE: list[Credentials] = []  # innermost served estate last


def auth_headers(api: str) -> dict[str, str]:
    """Credentials for calling `api` through the innermost estate being served."""
    return dict(_ACTIVE[-1].headers.get(api, {})) if _ACTIVE else {}


def partner_consumer() -> str:
    """The consumer of the innermost estate's partner key (to link it to an account with
    TIERGATE_PARTNER_ACCOUNTS)."""
    return _ACTIVE[-1].partner_consumer if _ACTIVE else ""


def end_user_token(customer_id: str | None, scope: str, **claims: Any) -> str:
    """An access token of the innermost estate's built-in server, signed with its own key,
    as it issues them for a signed-in user (authorization code grant): `sub` the username,
    `customer_id`, `client_id`, `scope` and the RFC 9068 claims; `claims` add or override
    (`act` and the tg_* service claims for a token-exchange token, customer_id=None drops it).
    """
    import jwt

    issuer = _ACTIVE[-1].issuer
    kid, alg, private = issuer.signing_key()
    now = int(time.time())
    payload = {
        "iss": issuer.issuer,
        "aud": issuer.audience,
        "sub": f"user-{customer_id}",
        "client_id": "shop-app",
        "customer_id": customer_id,
        "scope": scope,
        "iat": now,
        "exp": now + 300,
        "jti": unique_key("jti"),
        **claims,
    }
    payload = {k: v for k, v in payload.items() if v is not None}
    return jwt.encode(payload, private, algorithm=alg, headers={"kid": kid, "typ": "at+jwt"})


def service_env(api: str) -> dict[str, str]:
    """TIERGATE_CLIENT_ID/SECRET/TOKEN_URL of `api`'s service identity, for running the
    tier API on its own socket against the served estate (empty for a partial estate)."""
    if not _ACTIVE or api not in _ACTIVE[-1].services:
        return {}
    svc = _ACTIVE[-1].services[api]
    return {
        "TIERGATE_CLIENT_ID": svc["client_id"],
        "TIERGATE_CLIENT_SECRET": svc["client_secret"],
        "TIERGATE_TOKEN_URL": svc["token_endpoint"],
    }


def fetch_token(url: str, client_id: str, secret: str) -> str:
    """A real client-credentials token from the gateway's /oauth/token."""
    response = httpx.post(
        f"{url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(client_id, secret),
        timeout=30,
    )
    response.raise_for_status()
    return str(response.json()["access_token"])


def run_async(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine to completion from sync code (also under a running loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result(timeout=60)


async def _issue_credentials(config: GatewayConfig) -> tuple[str, str, str, str]:
    from gateway.registry import Registry

    registry = Registry.from_url(config.registry_url)
    try:
        await registry.start()
        # Support credentials (the contracts' bypass scopes): they act for no customer and
        # may name any, so the contract runs reach every customer and account.
        client, secret = await registry.create_client(
            unique_key("tests-mobile"),
            ["mobile:read", "mobile:write", MOBILE_SUPPORT],
            plan=TEST_PLAN,
        )
        consumer = unique_key("tests-partner")
        _, key = await registry.create_api_key(
            consumer, TEST_PLAN, ["partner"], scopes=[PARTNER_SUPPORT]
        )
    finally:
        await registry.aclose()
    return client.client_id, secret, key, consumer


def provision(url: str, config: GatewayConfig, services: dict[str, dict[str, str]]) -> Credentials:
    """Real credentials for every API of the served (whole) estate."""
    client_id, secret, key, consumer = run_async(_issue_credentials(config))
    credentials = Credentials(
        services={
            api: {**svc, "token_endpoint": f"{url}/oauth/token"} for api, svc in services.items()
        },
        partner_consumer=consumer,
    )
    secrets = {client_id: secret} | {
        svc["client_id"]: svc["client_secret"] for svc in services.values()
    }
    tokens: dict[str, str] = {}  # client id → token
    for api in config.apis:
        if api.name == "partner":
            credentials.headers[api.name] = {"X-API-Key": key}
            continue
        caller = next((a.name for a in config.apis if api.name in a.depends_on), None)
        who = client_id if caller is None else services[caller]["client_id"]
        if who not in tokens:
            tokens[who] = fetch_token(url, who, secrets[who])
        credentials.headers[api.name] = {"Authorization": f"Bearer {tokens[who]}"}
    return credentials


def auth_header_args(api: str) -> list[str]:
    """The same credentials as `Name: value` strings (schemathesis -H / contract-test -H)."""
    return [f"{name}: {value}" for name, value in auth_headers(api).items()]


def estate_config(
    tmp_path: Path, targets: dict[str, list[str]] | None = None, only: list[str] | None = None
) -> GatewayConfig:
    """tiergate.yaml with free ports, contracts by absolute path, optional target overrides.

    The tier APIs keep their databases under TIERGATE_VAR_DIR: set it to a temporary
    directory (monkeypatch.setenv) before the gateway starts.
    """
    raw: dict[str, Any] = yaml.safe_load(ESTATE.read_text())
    raw["listeners"] = {
        "public": {"host": "127.0.0.1", "port": free_port()},
        "admin": {"host": "127.0.0.1", "port": free_port()},
    }
    raw["access_log"] = False
    raw["registry_url"] = f"sqlite:///{tmp_path}/registry.db"
    if only is not None:  # a partial estate: see the module docstring
        raw["defaults"] = {
            k: v for k, v in raw.get("defaults", {}).items() if k not in AUTH_POLICIES
        }
    apis = []
    for api in raw["apis"]:
        if only is not None and api["name"] not in only:
            continue
        api["contract"] = str(ROOT / api["contract"])
        if targets and api["name"] in targets:
            api["upstream"] = {**api["upstream"], "targets": targets[api["name"]]}
        if only is not None:
            api["depends_on"] = [d for d in api.get("depends_on", []) if d in only]
            api["policies"] = {
                k: v for k, v in api.get("policies", {}).items() if k not in AUTH_POLICIES
            }
        apis.append(api)
    raw["apis"] = apis
    if only is not None:  # sign-in and self-service name estate APIs a partial one lacks
        raw.get("catalogue", {}).pop("sign_in", None)
    path = tmp_path / "tiergate.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return load_config(path, env={})


def unique_key(prefix: str = "k") -> str:
    return f"{prefix}-{time.time_ns()}"


@contextmanager
def var_dir(path: Path) -> Iterator[Path]:
    """Point the tier APIs' databases (TIERGATE_VAR_DIR) at `path` for the block."""
    old = os.environ.get("TIERGATE_VAR_DIR")
    os.environ["TIERGATE_VAR_DIR"] = str(path)
    try:
        yield path
    finally:
        if old is None:
            os.environ.pop("TIERGATE_VAR_DIR", None)
        else:
            os.environ["TIERGATE_VAR_DIR"] = old


@contextmanager
def serve_estate(tmp_path: Path, **kwargs: Any) -> Iterator[tuple[str, GatewayConfig]]:
    """The estate's gateway (all tier APIs in-process) on a real socket: (url, config)."""
    from gateway.stack import build_gateway
    from tests.support.servers import serve_asgi

    config = estate_config(tmp_path, **kwargs)
    gateway = build_gateway(config)
    with var_dir(tmp_path / "var"), serve_asgi(gateway) as server:
        if kwargs.get("only") is None:
            credentials = provision(server.url, config, gateway.services.service_credentials)
            credentials.issuer = gateway.services.issuer
        else:
            credentials = Credentials()
        _ACTIVE.append(credentials)
        try:
            yield server.url, config
        finally:
            _ACTIVE.remove(credentials)


# Whether the gateway demands credentials (the whole estate does): the contract runs
# through the gateway send auth_headers and keep schemathesis' auth checks on.
AUTH_ENFORCED = True
