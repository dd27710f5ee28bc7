"""`tiergate users create|list|disable` and `tiergate clients create --public` as
subprocesses against a real registry."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from gateway.registry import Registry
from gateway.registry.commands import bad_redirect_uri
from tests.registry.test_commands import tiergate

PASSWORD = "a password for the cli"


def _check(registry_url: str, username: str, password: str) -> str:
    async def check() -> str:
        registry = Registry.from_url(registry_url)
        try:
            return (await registry.check_password(username, password)).outcome
        finally:
            await registry.aclose()

    return asyncio.run(check())


def test_users_create_list_disable(tmp_path, registry_url):
    username = f"ann-{uuid.uuid4().hex[:6]}"
    done = tiergate(
        registry_url,
        tmp_path,
        *("users", "create", username, "--customer", "cus_0042", "--password-stdin", "--json"),
        stdin=PASSWORD + "\n",
    )
    assert done.returncode == 0, done.stderr
    created = json.loads(done.stdout)
    assert created["username"] == username and created["customer_id"] == "cus_0042"
    assert PASSWORD not in done.stdout + done.stderr
    assert _check(registry_url, username, PASSWORD) == "ok"  # the newline is not part of it

    listing = tiergate(registry_url, tmp_path, "users", "list", "--json")
    users = {u["username"]: u for u in json.loads(listing.stdout)["items"]}
    assert users[username]["disabled_at"] is None and "password_hash" not in listing.stdout
    plain = tiergate(registry_url, tmp_path, "users", "list")
    assert username in plain.stdout and "active" in plain.stdout

    done = tiergate(registry_url, tmp_path, "users", "disable", username)
    assert done.returncode == 0 and "disabled" in done.stdout
    assert _check(registry_url, username, PASSWORD) == "disabled"
    again = tiergate(
        registry_url,
        tmp_path,
        *("users", "create", username, "--customer", "cus_0042", "--password-stdin"),
        stdin=PASSWORD,
    )
    assert again.returncode == 1 and "already exists" in again.stderr


def test_users_create_refusals(tmp_path):
    """Bad customer ids and short passwords are the registry's refusals
    (tests/registry/test_end_users.py); here: they reach the terminal, without the password."""
    url = f"sqlite:///{tmp_path}/cli.db"
    done = tiergate(
        url,
        tmp_path,
        "users",
        "create",
        "bob",
        "--customer",
        "42",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert done.returncode == 1 and "cus_0001" in done.stderr, done.stderr
    assert PASSWORD not in done.stderr
    done = tiergate(url, tmp_path, "users", "create", "bob", "--customer", "cus_0042", stdin="")
    assert done.returncode == 1 and "--password-stdin" in done.stderr  # no terminal to ask on


def test_disable_unknown_user_fails(tmp_path):
    done = tiergate(f"sqlite:///{tmp_path}/cli.db", tmp_path, "users", "disable", "nobody")
    assert done.returncode == 1 and "no such user" in done.stderr


def test_public_client_has_redirect_uris_and_no_secret(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    done = tiergate(
        url,
        tmp_path,
        *("clients", "create", "shop-app", "--public", "--scopes", "mobile:read"),
        *("--redirect-uri", "com.example.shop:/callback"),
        *("--redirect-uri", "http://127.0.0.1:8765/callback", "--json"),
    )
    assert done.returncode == 0, done.stderr
    client = json.loads(done.stdout)
    assert "client_secret" not in client
    assert client["client_type"] == "public"
    assert client["redirect_uris"] == [
        "com.example.shop:/callback",
        "http://127.0.0.1:8765/callback",
    ]
    assert client["grant_types"] == ["authorization_code", "refresh_token"]
    assert client["scopes"] == ["mobile:read"]


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://app.example/cb", "only for loopback"),
        ("https://app.example/cb#x", "fragment"),
        ("/relative", "absolute"),
        ("https:///cb", "no host"),
        ("https://app.example/c b", "spaces"),
        ("https://app.example/" + "x" * 600, "too long"),
    ],
)
def test_bad_redirect_uris(uri, message):
    assert message in (bad_redirect_uri(uri) or "")


@pytest.mark.parametrize(
    "uri",
    ["https://app.example/cb", "com.example.shop:/callback", "http://127.0.0.1:8765/cb"],
)
def test_good_redirect_uris(uri):
    assert bad_redirect_uri(uri) is None


def test_public_client_refusals(tmp_path):
    url = f"sqlite:///{tmp_path}/cli.db"
    done = tiergate(url, tmp_path, "clients", "create", "a", "--public")
    assert done.returncode == 1 and "at least one --redirect-uri" in done.stderr
    done = tiergate(
        url, tmp_path, "clients", "create", "a", "--public", "--redirect-uri", "http://x.example/"
    )
    assert done.returncode == 1 and "only for loopback" in done.stderr
