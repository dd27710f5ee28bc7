"""The api-key policy: config rules, then behaviour over real uvicorn → gateway → httpbin,
with keys in a real SQLite database behind the registry's agreed lookup."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import event

from gateway.policies import api_key as policy
from gateway.policies import authorize
from gateway.policies.api_key import ApiKeyConfig
from tests.support.auth_estate import identity_gateway

# -- config -------------------------------------------------------------------------------


def test_defaults_refuse_query_keys_and_cache_at_most_5s():
    config = ApiKeyConfig.model_validate({})
    assert config.allow_query is False
    assert config.cache_ttl <= 5


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"cache_ttl": 6}, "less than or equal to 5"),
        ({"negative_cache_ttl": 10}, "less than or equal to 5"),
        ({"query_param": "a b"}, "pattern"),
        ({"header": "X-Key"}, "Extra inputs"),
    ],
)
def test_config_rules(raw, message):
    with pytest.raises(ValidationError, match=message):
        ApiKeyConfig.model_validate(raw)


# -- behaviour ------------------------------------------------------------------------------

PARTNER = "/experience/partner/v1"
MOBILE = "/experience/mobile/v1"


@contextmanager
def estate(tmp_path, httpbin_url, database=None, **key_config: Any) -> Iterator[Any]:
    apis = [
        {"name": name, "upstream": {"targets": [httpbin_url]}, "policies": {"api-key": cfg}}
        for name, cfg in [("partner", key_config), ("mobile", {}), ("bulk", {"allow_query": True})]
    ]
    with identity_gateway(tmp_path, apis, database) as env:
        env.lookups = count_key_lookups(env.gateway)
        env.create = partial(create_key, env)
        yield env


def create_key(env, consumer: str, plan: str, apis: list[str], expires_in: float | None = None):
    """A real partner key in the registry: (key id, plaintext)."""

    async def create(registry):
        record, plaintext = await registry.create_api_key(consumer, plan, apis, expires_in)
        return record.id, plaintext

    return env.registry(create)


def count_key_lookups(gateway) -> list[str]:
    """Every SQL statement the gateway's registry runs against api_keys."""
    statements: list[str] = []

    def seen(conn, cursor, statement, *args) -> None:
        if "api_keys" in statement:
            statements.append(statement)

    event.listen(gateway.services.registry.engine.sync_engine, "before_cursor_execute", seen)
    return statements


@pytest.fixture(scope="module")
def shared(tmp_path_factory, httpbin_url):
    with estate(tmp_path_factory.mktemp("keys"), httpbin_url) as env:
        yield env


def get(env, path: str, key: str | None = None, **kw: Any) -> httpx.Response:
    headers = kw.pop("headers", {})
    if key is not None:
        headers["x-api-key"] = key
    return httpx.get(f"{env.url}{path}", headers=headers, timeout=10, **kw)


def refused(response: httpx.Response, status: int, detail: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["detail"] == detail
    if status == 401:
        assert response.headers["www-authenticate"].startswith("APIKey ")


def test_a_valid_key_reaches_upstream_as_a_partner_with_its_plan_and_without_the_key(shared):
    _, key = shared.create("acme", "gold", ["partner"])
    r = get(shared, f"{PARTNER}/headers", key)
    assert r.status_code == 200, r.text
    sent = r.json()["headers"]
    assert sent["X-Consumer-Id"] == "acme"
    assert sent["X-Consumer-Kind"] == "partner"
    assert sent["X-Consumer-Plan"] == "gold"
    assert "X-Api-Key" not in sent
    assert key not in json.dumps(r.json())


def test_missing_malformed_unknown_and_duplicated_keys_are_401(shared):
    no_key = authorize.NO_CREDENTIALS.format(needs=authorize.NEEDS["apiKey"])
    refused(get(shared, f"{PARTNER}/get"), 401, no_key)
    refused(get(shared, f"{PARTNER}/get", "secret"), 401, policy.MALFORMED)
    refused(get(shared, f"{PARTNER}/get", "tg_abcdefgh_" + "x" * 42), 401, policy.MALFORMED)
    refused(get(shared, f"{PARTNER}/get", "tg_abcdefgh_" + "x" * 43), 401, policy.UNKNOWN)
    _, key = shared.create("acme", "gold", ["partner"])
    r = httpx.get(f"{shared.url}{PARTNER}/get", headers=[("x-api-key", key), ("x-api-key", key)])
    refused(r, 401, policy.MANY_KEYS)
    # A key with a valid secret but someone else's prefix does not match.
    other = "00000000" if key[3:11] != "00000000" else "11111111"
    forged = key[:3] + other + key[11:]
    refused(get(shared, f"{PARTNER}/get", forged), 401, policy.UNKNOWN)


@pytest.mark.parametrize("param", ["api_key", "apikey", "API-KEY"])
def test_a_key_in_the_query_string_is_refused_with_a_pointer_to_the_header(shared, param):
    _, key = shared.create("acme", "gold", ["partner"])
    refused(get(shared, f"{PARTNER}/get", params={param: key}), 401, policy.KEY_IN_QUERY)
    refused(get(shared, f"{PARTNER}/get", key, params={param: key}), 401, policy.KEY_IN_QUERY)
    assert "X-API-Key header" in policy.KEY_IN_QUERY
    assert get(shared, f"{PARTNER}/get", key, params={"monkey": "1"}).status_code == 200


def test_allow_query_accepts_the_key_and_strips_it_before_forwarding(shared):
    _, key = shared.create("acme", "gold", ["bulk"])
    r = get(shared, "/experience/bulk/v1/get", params={"api_key": key, "page": "2"})
    assert r.status_code == 200, r.text
    assert r.json()["args"] == {"page": "2"}
    assert r.json()["headers"]["X-Consumer-Id"] == "acme"


def test_keys_are_scoped_to_apis(shared):
    _, key = shared.create("acme", "gold", ["partner"])
    refused(
        get(shared, f"{MOBILE}/get", key),
        403,
        policy.WRONG_API.format(prefix=key[3:11], api="mobile"),
    )
    assert get(shared, f"{PARTNER}/get", key).status_code == 200


def test_expiry_and_rotation_overlap(shared):
    _, expired = shared.create("acme", "gold", ["partner"], expires_in=-1)
    detail = policy.EXPIRED.format(prefix=expired[3:11])
    refused(get(shared, f"{PARTNER}/get", expired), 401, detail)
    # Rotation: the old key stays valid for the overlap while the new one works already.
    # (A change to a key reaches a node within cache_ttl; here the old key is first used
    # after the rotation, so its new expires_at is what the gateway caches.)
    old_id, old = shared.create("acme", "gold", ["partner"])

    async def rotate(registry):
        _, plaintext = await registry.rotate_api_key(old_id, overlap_seconds=1.5)
        old_record = await registry.api_key(old_id)
        return plaintext, old_record.expires_at

    new, old_expires = shared.registry(rotate)
    assert get(shared, f"{PARTNER}/get", new).status_code == 200
    assert get(shared, f"{PARTNER}/get", old).status_code == 200
    time.sleep(min(2.0, max(0.0, old_expires - time.time()) + 0.05))
    refused(get(shared, f"{PARTNER}/get", old), 401, policy.EXPIRED.format(prefix=old[3:11]))
    assert get(shared, f"{PARTNER}/get", new).status_code == 200


def test_revocation_reaches_the_gateway_within_the_cache_ttl(tmp_path, httpbin_url, registry_url):
    """On SQLite and PostgreSQL: revoked in the registry (by any node), refused here
    once the cached lookup expires (cache_ttl, at most 5 s)."""
    with estate(tmp_path, httpbin_url, registry_url, cache_ttl=0.5) as env:
        key_id, key = env.create("acme", "gold", ["partner"])
        assert get(env, f"{PARTNER}/get", key).status_code == 200
        assert get(env, f"{PARTNER}/get", key).status_code == 200  # from the cache
        assert len(env.lookups) == 1

        async def revoke(registry):
            await registry.revoke_api_key(key_id)

        env.registry(revoke)
        revoked_at = time.monotonic()
        while get(env, f"{PARTNER}/get", key).status_code == 200:
            assert time.monotonic() - revoked_at < 0.5 + 0.5, "revocation not seen in time"
            time.sleep(0.05)
        refused(get(env, f"{PARTNER}/get", key), 401, policy.REVOKED.format(prefix=key[3:11]))


def test_last_use_is_written_to_the_registry_in_batches(tmp_path, httpbin_url):
    with estate(tmp_path, httpbin_url, usage_interval=1) as env:
        key_id, key = env.create("acme", "gold", ["partner"])
        used_at = time.time()
        assert get(env, f"{PARTNER}/get", key).status_code == 200

        async def last_used(registry):
            return (await registry.api_key(key_id)).last_used_at

        assert env.registry(last_used) is None  # not written per request
        time.sleep(1.05)
        assert get(env, f"{PARTNER}/get", key).status_code == 200  # this one flushes
        deadline = time.monotonic() + 2
        while env.registry(last_used) is None:
            assert time.monotonic() < deadline, "usage never written"
            time.sleep(0.1)
        assert env.registry(last_used) >= used_at


def test_unknown_keys_are_cached_briefly_and_looked_up_once_when_concurrent(shared):
    unknown = "tg_nobody00_" + "y" * 43
    before = len(shared.lookups)

    async def flood() -> list[int]:
        async with httpx.AsyncClient(timeout=10) as client:
            responses = await asyncio.gather(
                *(
                    client.get(f"{shared.url}{PARTNER}/get", headers={"x-api-key": unknown})
                    for _ in range(30)
                )
            )
        return [r.status_code for r in responses]

    assert set(asyncio.run(flood())) == {401}
    assert set(asyncio.run(flood())) == {401}
    assert len(shared.lookups) - before == 1


def test_only_the_prefix_is_logged(tmp_path, httpbin_url):
    lines: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(record.getMessage())

    access = logging.getLogger("tiergate.access")
    handler, level = Capture(), access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        api = {
            "name": "partner",
            "upstream": {"targets": [httpbin_url]},
            "policies": {"api-key": {}},
        }
        with identity_gateway(tmp_path, [api], access_log=True) as env:
            _, key = create_key(env, "acme", "gold", ["partner"])
            assert get(env, f"{PARTNER}/get", key).status_code == 200
            get(env, f"{PARTNER}/get", params={"api_key": key})
    finally:
        access.removeHandler(handler)
        access.setLevel(level)
    records = [json.loads(line) for line in lines if line.startswith("{")]
    assert records[0]["key_prefix"] == key[3:11]
    assert records[0]["status"] == 200
    assert all(key not in line and key[12:] not in line for line in lines)


def test_a_key_from_the_cli_calls_the_partner_api_until_revoked_with_the_cli(tmp_path, httpbin_url):
    with estate(tmp_path, httpbin_url, cache_ttl=0.5) as env:
        run_dir = tmp_path / "cli"
        run_dir.mkdir()
        environment = {**os.environ, "TIERGATE_REGISTRY_URL": env.registry_url}
        environment.pop("TIERGATE_CONFIG", None)

        def tiergate(*args: str) -> str:
            done = subprocess.run(
                [str(Path(sys.executable).parent / "tiergate"), *args],
                cwd=run_dir,
                env=environment,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        created = json.loads(
            tiergate(
                "keys",
                "create",
                "--consumer",
                "acme",
                "--plan",
                "gold",
                "--apis",
                "partner",
                "--json",
            )
        )
        r = get(env, f"{PARTNER}/headers", created["key"])
        assert r.status_code == 200, r.text
        assert r.json()["headers"]["X-Consumer-Plan"] == "gold"
        tiergate("keys", "revoke", created["id"])
        deadline = time.monotonic() + 5
        while get(env, f"{PARTNER}/get", created["key"]).status_code == 200:
            assert time.monotonic() < deadline, "revoked key still accepted after 5 s"
            time.sleep(0.1)
        detail = policy.REVOKED.format(prefix=created["prefix"])
        refused(get(env, f"{PARTNER}/get", created["key"]), 401, detail)
