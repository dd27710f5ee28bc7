"""JWKS key rotation at an external IdP (real IdP and gateway on uvicorn): a token with
the new kid is accepted at once, even right after a routine fetch, while a storm of
unknown kids still costs the IdP at most one fetch per refetch_cooldown."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import httpx

from gateway.policies import jwt as policy
from tests.support.auth_estate import identity_gateway
from tests.support.servers import serve_asgi
from tests.support.tokens import IdP, claims, rsa_key, sign

ORDERS = "/experience/orders/v1"
COOLDOWN = 30.0  # the default: long enough that no test here waits it out


@contextmanager
def idp_estate(tmp_path, httpbin_url) -> Iterator[Any]:
    old, new = rsa_key("old-" + uuid.uuid4().hex[:6]), rsa_key("new-" + uuid.uuid4().hex[:6])
    idp = IdP([old])
    with serve_asgi(idp.app) as idp_server:
        idp.url = idp_server.url
        issuer = {
            "jwks_uri": f"{idp.url}/jwks",
            "issuer": idp.url,
            "audience": "tiergate-ext",
            "refetch_cooldown": COOLDOWN,
        }
        apis = [
            {
                "name": "orders",
                "upstream": {"targets": [httpbin_url]},
                "policies": {"jwt": {"issuers": [issuer]}},
            }
        ]
        with identity_gateway(tmp_path, apis) as gw:
            yield SimpleNamespace(idp=idp, old=old, new=new, url=gw.url)


def _token(env: Any, key: Any) -> str:
    return sign(key, claims(env.idp.issuer, aud="tiergate-ext"), typ=None)


def _call(env: Any, token: str) -> httpx.Response:
    return httpx.get(
        f"{env.url}{ORDERS}/get", headers={"authorization": f"Bearer {token}"}, timeout=10
    )


def _storm(env: Any, tokens: list[str]) -> set[int]:
    async def run() -> set[int]:
        async with httpx.AsyncClient(timeout=20) as client:

            async def one(token: str) -> int:
                headers = {"authorization": f"Bearer {token}"}
                return (await client.get(f"{env.url}{ORDERS}/get", headers=headers)).status_code

            return set(await asyncio.gather(*(one(t) for t in tokens)))

    return asyncio.run(run())


def test_a_rotated_in_key_is_accepted_right_after_a_routine_fetch(tmp_path, httpbin_url):
    with idp_estate(tmp_path, httpbin_url) as env:
        assert _call(env, _token(env, env.old)).status_code == 200
        assert env.idp.jwks_fetches == 1  # the routine (first) fetch, just now
        env.idp.keys = [env.new, env.old]  # the IdP rotates: new key signs from now on
        r = _call(env, _token(env, env.new))
        assert r.status_code == 200, r.text
        assert env.idp.jwks_fetches == 2
        assert _call(env, _token(env, env.old)).status_code == 200  # overlap


def test_unknown_kids_fetch_at_most_once_per_cooldown(tmp_path, httpbin_url):
    with idp_estate(tmp_path, httpbin_url) as env:
        assert _call(env, _token(env, env.old)).status_code == 200
        fake = rsa_key("x")
        tokens = []
        for _ in range(150):
            fake.kid = uuid.uuid4().hex
            tokens.append(_token(env, fake))
        assert _storm(env, tokens[:75]) == {401}
        assert env.idp.jwks_fetches == 2  # one unknown-kid fetch for the whole storm
        assert _storm(env, tokens[75:]) == {401}
        assert env.idp.jwks_fetches == 2  # still within the cooldown: none more
        # A rotation now waits for the cooldown (the price of bounding the storm)...
        env.idp.keys = [env.new, env.old]
        r = _call(env, _token(env, env.new))
        assert r.status_code == 401 and r.json()["detail"] == policy.UNKNOWN_KEY
        assert env.idp.jwks_fetches == 2
        assert _call(env, _token(env, env.old)).status_code == 200  # known keys still work


def test_a_first_token_with_an_unknown_kid_costs_one_fetch(tmp_path, httpbin_url):
    with idp_estate(tmp_path, httpbin_url) as env:
        r = _call(env, _token(env, env.new))  # the IdP does not publish `new` yet
        assert r.status_code == 401 and r.json()["detail"] == policy.UNKNOWN_KEY
        assert env.idp.jwks_fetches == 1  # the first fetch is as fresh as a refetch
        env.idp.keys = [env.new, env.old]  # now it does
        # The first fetch did not use up the unknown-kid allowance: this one fetches.
        assert _call(env, _token(env, env.new)).status_code == 200
        assert env.idp.jwks_fetches == 2
