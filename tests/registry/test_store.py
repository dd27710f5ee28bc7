"""The registry on SQLite and PostgreSQL: hashes only, keys' lifecycle, schema races."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import text

from gateway.config.models import OAuthConfig
from gateway.oauth.keys import ensure_signing_key, rotate_signing_key
from gateway.registry import Registry, hash_credential
from gateway.registry.schema import SCHEMA_VERSION
from tests.support.databases import postgres_database


async def _all_cells(registry: Registry) -> str:
    cells = []
    async with registry.engine.connect() as conn:
        for table in ["consumers", "applications", "oauth_clients", "api_keys"]:
            for row in (await conn.execute(text(f"SELECT * FROM {table}"))).all():
                cells.extend(str(value) for value in row)
    return "\n".join(cells)


async def test_secrets_and_keys_are_stored_only_as_hashes(registry):
    consumer = f"acme-{uuid.uuid4().hex[:6]}"
    key, plaintext = await registry.create_api_key(consumer, "gold", ["partner"])
    client, secret = await registry.create_client(f"app-{uuid.uuid4().hex[:6]}", ["a"])
    dump = await _all_cells(registry)
    assert plaintext not in dump and plaintext.split("_", 2)[2] not in dump
    assert secret not in dump
    assert hash_credential(plaintext) in dump and hash_credential(secret) in dump
    assert key.prefix in dump and plaintext.startswith(f"tg_{key.prefix}_")
    assert len(plaintext) == len("tg_") + 8 + 1 + 43
    assert await registry.authenticate_client(client.client_id, secret) == client
    assert await registry.authenticate_client(client.client_id, secret + "x") is None
    assert await registry.authenticate_client("cl_nobody", secret) is None


async def test_api_key_lookup_revoke_and_rotation_overlap(registry):
    key, plaintext = await registry.create_api_key("acme", "gold", ["partner", "mobile"], 3600)
    found = await registry.api_key_by_hash(hash_credential(plaintext))
    assert found == key and found.apis == frozenset({"partner", "mobile"})
    assert found.expires_at == pytest.approx(time.time() + 3600, abs=5)
    assert await registry.api_key_by_hash(hash_credential(plaintext + "x")) is None

    new, new_plaintext = await registry.rotate_api_key(key.id, overlap_seconds=60)
    old = await registry.api_key(key.id)
    assert old.replaced_by == new.id and old.usable(time.time())
    assert old.expires_at == pytest.approx(time.time() + 60, abs=5)
    assert not old.usable(time.time() + 61)
    assert (new.consumer_id, new.plan, new.apis) == (key.consumer_id, key.plan, key.apis)
    assert (await registry.api_key_by_hash(hash_credential(new_plaintext))).id == new.id

    revoked = await registry.revoke_api_key(new.id)
    assert revoked.revoked_at is not None and not revoked.usable(time.time())
    assert (await registry.api_key_by_hash(hash_credential(new_plaintext))).revoked_at


async def test_key_last_use_is_recorded_for_usage(registry):
    key, _ = await registry.create_api_key("user", "gold", ["partner"])
    await registry.mark_api_keys_used({key.id: 1234.5})
    assert (await registry.api_key(key.id)).last_used_at == 1234.5


async def test_revoked_tokens_are_listed_since_a_time_until_they_expire(registry):
    jti = uuid.uuid4().hex
    before = time.time() - 1
    await registry.revoke_token(jti, time.time() + 60)
    await registry.revoke_token(jti, time.time() + 60)  # idempotent
    await registry.revoke_token(f"old-{jti}", time.time() - 1)
    listed = dict(await registry.revoked_since(before))
    assert jti in listed and f"old-{jti}" not in listed
    assert jti not in dict(await registry.revoked_since(time.time() + 10))


async def test_signing_key_retires_after_its_tokens_expire(registry):
    oauth = OAuthConfig(key_activation_delay=0, token_ttl=60)
    await ensure_signing_key(registry, oauth)
    first = (await registry.signing_keys())[0]
    new = await rotate_signing_key(registry, oauth)
    published = await registry.signing_keys()
    assert [k.kid for k in published][:2] == [new.kid, first.kid]
    assert published[1].retire_after == pytest.approx(time.time() + 60 + 60, abs=5)
    later = [k.kid for k in await registry.signing_keys(now=time.time() + 200)]
    assert new.kid in later and first.kid not in later
    assert "PRIVATE KEY" not in str(published[0].public_jwk) and "d" not in published[0].public_jwk


_WORKER = """
import asyncio, sys
from gateway.config.models import OAuthConfig
from gateway.oauth.keys import ensure_signing_key
from gateway.registry import Registry

async def main():
    registry = Registry.from_url(sys.argv[1])
    print(await registry.start())
    await ensure_signing_key(registry, OAuthConfig())
    await registry.aclose()

asyncio.run(main())
"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_concurrent_start_up_by_several_processes(tmp_path, backend):
    """Four nodes start on an empty database at once: one schema, one signing key."""
    if backend == "sqlite":
        _race(f"sqlite:///{tmp_path}/race.db")
    else:
        with postgres_database("race") as url:
            _race(url)


def _race(url: str) -> None:
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    for worker in workers:
        out, err = worker.communicate(timeout=90)
        assert worker.returncode == 0, err
        assert out.strip() == str(SCHEMA_VERSION)

    async def check() -> None:
        registry = Registry.from_url(url)
        await registry.start()
        assert len(await registry.signing_keys()) == 1
        # several engines in one process as well
        engines = [Registry.from_url(url) for _ in range(3)]
        assert await asyncio.gather(*(e.start() for e in engines)) == [SCHEMA_VERSION] * 3
        for store in [registry, *engines]:
            await store.aclose()

    asyncio.run(check())


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_version_3_registry_migrates_to_secret_rotation(tmp_path, backend):
    async def run(url: str) -> None:
        first = Registry.from_url(url)
        await first.start()
        client, secret = await first.create_client("acme", ["a"])
        async with first.engine.begin() as conn:  # back to the version-3 layout
            for column in ("previous_secret_hash", "previous_secret_until"):
                await conn.execute(text(f"ALTER TABLE oauth_clients DROP COLUMN {column}"))
            await conn.execute(text("UPDATE tiergate_schema SET version = 3"))
        await first.aclose()
        second = Registry.from_url(url)
        assert await second.start() == SCHEMA_VERSION == 4
        try:
            assert await second.authenticate_client(client.client_id, secret) is not None
            _, new = await second.rotate_client_secret(client.client_id, 60)
            assert await second.authenticate_client(client.client_id, secret) is not None
            assert await second.authenticate_client(client.client_id, new) is not None
            assert await second.authenticate_client(client.client_id, "guess") is None
        finally:
            await second.aclose()

    if backend == "sqlite":
        asyncio.run(run(f"sqlite:///{tmp_path}/old.db"))
        return
    with postgres_database("migrate3") as url:
        asyncio.run(run(url))
