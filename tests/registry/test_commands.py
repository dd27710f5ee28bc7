"""`tiergate clients|keys|signing-keys` as subprocesses against a real registry."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid

import pytest

from gateway.registry import Registry, hash_credential


def tiergate(
    registry_url: str, cwd, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TIERGATE_REGISTRY_URL": registry_url, "PYTHONPATH": os.getcwd()}
    env.pop("TIERGATE_CONFIG", None)
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        input=stdin,
    )


def _stored_key(registry_url: str, plaintext: str):
    async def lookup():
        registry = Registry.from_url(registry_url)
        try:
            return await registry.api_key_by_hash(hash_credential(plaintext))
        finally:
            await registry.aclose()

    return asyncio.run(lookup())


@pytest.fixture
def sqlite_url(tmp_path):
    """The commands share one code path for both backends: the full CRUD runs on both,
    the rest on SQLite only to keep the suite lean."""
    return f"sqlite:///{tmp_path}/cli.db"


def test_keys_create_list_revoke(tmp_path, registry_url):
    consumer = f"acme-{uuid.uuid4().hex[:6]}"
    done = tiergate(
        registry_url, tmp_path, "keys", "create", "--consumer", consumer, "--plan", "gold",
        "--apis", "partner,mobile", "--json",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    key = created["key"]
    assert key.startswith(f"tg_{created['prefix']}_")
    assert created["apis"] == ["mobile", "partner"] and created["state"] == "active"
    assert _stored_key(registry_url, key).consumer_id == consumer

    listing = tiergate(registry_url, tmp_path, "keys", "list")
    assert listing.returncode == 0, listing.stderr
    assert created["id"] in listing.stdout and f"tg_{created['prefix']}_" in listing.stdout
    header, *rows = listing.stdout.splitlines()
    assert header.split() == ["ID", "KEY", "CONSUMER", "PLAN", "STATE", "APIS"]
    row = next(r for r in rows if r.startswith(created["id"]))
    assert row.index(consumer) == header.index("CONSUMER")  # columns line up
    assert key not in listing.stdout and key.split("_", 2)[2] not in listing.stdout
    listed = json.loads(tiergate(registry_url, tmp_path, "keys", "list", "--json").stdout)
    assert all("key" not in item for item in listed["items"])

    revoked = tiergate(registry_url, tmp_path, "keys", "revoke", created["id"], "--json")
    assert revoked.returncode == 0, revoked.stderr
    assert key not in revoked.stdout
    assert json.loads(revoked.stdout)["state"] == "revoked"
    assert _stored_key(registry_url, key).revoked_at is not None
    assert "revoked" in tiergate(registry_url, tmp_path, "keys", "list").stdout

    missing = tiergate(registry_url, tmp_path, "keys", "revoke", "key_nope")
    assert missing.returncode == 1 and "no such API key" in missing.stderr


def test_keys_rotate_prints_a_new_key_and_keeps_the_old_for_the_overlap(tmp_path, sqlite_url):
    created = json.loads(
        tiergate(
            sqlite_url, tmp_path, "keys", "create", "--consumer", "rot", "--plan", "p",
            "--apis", "partner", "--json",
        ).stdout
    )  # fmt: skip
    done = tiergate(
        sqlite_url, tmp_path, "keys", "rotate", created["id"], "--overlap", "30", "--json"
    )
    assert done.returncode == 0, done.stderr
    rotated = json.loads(done.stdout)
    assert rotated["key"] != created["key"]
    old = _stored_key(sqlite_url, created["key"])
    assert old.replaced_by == rotated["id"] and old.expires_at is not None


def test_clients_create_shows_the_secret_once(tmp_path, sqlite_url):
    name = f"mobile-{uuid.uuid4().hex[:6]}"
    done = tiergate(sqlite_url, tmp_path, "clients", "create", name, "--scopes", "a b", "--json")
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["scopes"] == ["a", "b"] and created["kind"] == "client"
    secret = created["client_secret"]
    text = tiergate(sqlite_url, tmp_path, "clients", "create", f"{name}-2", "--scopes", "a")
    assert "client_secret:" in text.stdout and "Shown once" in text.stdout
    listing = tiergate(sqlite_url, tmp_path, "clients", "list")
    assert created["client_id"] in listing.stdout and secret not in listing.stdout
    assert listing.stdout.splitlines()[0].split() == [
        "CLIENT_ID", "KIND", "CONSUMER", "STATE", "SCOPES",
    ]  # fmt: skip


def test_clients_create_service_provisions_what_embedded_mode_would(tmp_path, sqlite_url):
    """A tier API run as a separate service gets svc-<api> (kind service, its tier, the
    scopes of the tier below); running it again re-keys the same client."""
    (tmp_path / "contract.yaml").write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n"
    )
    (tmp_path / "tiergate.yaml").write_text(
        "apis:\n"
        "- {name: orders, tier: system, contract: contract.yaml,"
        " upstream: {targets: ['http://127.0.0.1:9']},"
        " policies: {jwt: {scopes: [orders:audit]}}}\n"
        "- {name: fulfil, tier: process, contract: contract.yaml,"
        " upstream: {targets: ['http://127.0.0.1:9']}, depends_on: [orders]}\n"
    )
    args = ("clients", "create", "fulfil", "--service", "--json")
    first = tiergate(sqlite_url, tmp_path, *args)
    assert first.returncode == 0, first.stderr
    created = json.loads(first.stdout)
    assert created["client_id"] == "svc-fulfil"
    assert (created["kind"], created["api"], created["tier"]) == ("service", "fulfil", "process")
    assert created["scopes"] == ["orders:audit", "orders:read", "orders:write"]
    again = json.loads(tiergate(sqlite_url, tmp_path, *args).stdout)
    assert again["client_id"] == "svc-fulfil"
    assert again["client_secret"] != created["client_secret"]  # re-keyed, one client
    unknown = tiergate(sqlite_url, tmp_path, "clients", "create", "nope", "--service")
    assert unknown.returncode == 1 and "no API named 'nope'" in unknown.stderr


def test_signing_keys_rotate(tmp_path, sqlite_url):
    done = tiergate(sqlite_url, tmp_path, "signing-keys", "rotate")
    assert done.returncode == 0, done.stderr
    assert "new signing key" in done.stdout and "PRIVATE" not in done.stdout


def test_unknown_plan_or_api_is_refused_when_the_config_names_them(tmp_path, sqlite_url):
    (tmp_path / "contract.yaml").write_text(
        "openapi: 3.1.0\ninfo: {title: t, version: '1'}\npaths: {}\n"
    )
    (tmp_path / "tiergate.yaml").write_text(
        "apis:\n- {name: partner, tier: experience, contract: contract.yaml,"
        " upstream: {targets: ['http://127.0.0.1:9']}}\n"
    )
    done = tiergate(
        sqlite_url, tmp_path, "keys", "create", "--consumer", "x", "--plan", "p",
        "--apis", "partner,nope",
    )  # fmt: skip
    assert done.returncode == 1 and "unknown APIs ['nope']" in done.stderr


def test_unreachable_registry_is_a_clear_error_without_the_password(tmp_path):
    url = "postgresql://tg:s3cret-pw@127.0.0.1:1/nowhere"
    done = tiergate(url, tmp_path, "keys", "list")
    assert done.returncode == 1
    assert "cannot use the registry at postgresql://tg:***@127.0.0.1:1/nowhere" in done.stderr
    assert "s3cret-pw" not in done.stderr + done.stdout
