"""Registry schema v3 on SQLite and PostgreSQL: users (argon2id hashes, lockout),
authorization codes (single use, short-lived), refresh-token families (rotation, reuse
revokes the family), and the migration from version 2."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import text

from gateway.oauth.revocations import PURGE_EVERY, RevocationCache
from gateway.registry import Conflict, NotFound, Registry, RegistryError
from gateway.registry.credentials import hash_credential
from gateway.registry.end_users import LOCK_AFTER, lock_for
from gateway.registry.schema import SCHEMA_VERSION
from tests.support.databases import postgres_database

PASSWORD = "a long enough password"


def _name() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def test_password_is_stored_as_argon2id_only(registry):
    username = _name()
    user = await registry.create_user(username, PASSWORD, "cus_0007")
    assert user.public()["customer_id"] == "cus_0007" and "password" not in str(user.public())
    async with registry.engine.connect() as conn:
        stored = (
            await conn.execute(
                text("SELECT password_hash FROM users WHERE username = :u"), {"u": username}
            )
        ).scalar_one()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert (await registry.check_password(username, PASSWORD)).outcome == "ok"
    assert (await registry.check_password(username, PASSWORD + "x")).outcome == "invalid"
    assert (await registry.check_password("nobody", PASSWORD)).outcome == "invalid"


@pytest.mark.parametrize(
    ("username", "customer", "password"),
    [
        ("bad name", "cus_0001", PASSWORD),
        ("", "cus_0001", PASSWORD),
        ("x" * 65, "cus_0001", PASSWORD),
        ("ok", "customer-1", PASSWORD),
        ("ok", "cus_1", PASSWORD),
        ("ok", "cus_0001", "short"),
        ("ana\n", "cus_0001", PASSWORD),  # `$` alone would let a trailing newline in
        ("ok", "cus_0001\n", PASSWORD),
    ],
)
async def test_invalid_users_are_refused(registry, username, customer, password):
    with pytest.raises(RegistryError):
        await registry.create_user(username, password, customer)


async def test_duplicate_user_conflicts_and_disable_unknown_is_not_found(registry):
    username = _name()
    await registry.create_user(username, PASSWORD, "cus_0001")
    with pytest.raises(Conflict):
        await registry.create_user(username, PASSWORD, "cus_0002")
    with pytest.raises(NotFound):
        await registry.disable_user("no-such-user")


async def test_lockout_counts_failures_and_a_success_resets_them(registry):
    username = _name()
    await registry.create_user(username, PASSWORD, "cus_0001")
    for _ in range(LOCK_AFTER - 1):
        assert (await registry.check_password(username, "wrong")).outcome == "invalid"
    assert (await registry.check_password(username, PASSWORD)).outcome == "ok"
    assert (await registry.user(username)).failed_attempts == 0
    for _ in range(LOCK_AFTER):
        await registry.check_password(username, "wrong")
    locked = await registry.check_password(username, PASSWORD)
    assert locked.outcome == "locked" and locked.locked_until > time.time()
    assert lock_for(LOCK_AFTER) == 30 and lock_for(LOCK_AFTER + 1) == 60
    assert lock_for(LOCK_AFTER + 20) == 900 and lock_for(LOCK_AFTER - 1) == 0


async def test_codes_work_once_for_their_client_and_not_after_expiry(registry):
    username = _name()
    options = dict(
        username=username,
        redirect_uri="http://127.0.0.1/cb",
        scope="a",
        code_challenge="c" * 43,
        code_challenge_method="S256",
    )
    await registry.save_authorization_code("code-1", client_id="cl_a", ttl=60, **options)
    assert await registry.redeem_authorization_code("code-1", "cl_b") is None  # other client
    redeemed = await registry.redeem_authorization_code("code-1", "cl_a")
    assert redeemed is not None and redeemed.username == username
    assert await registry.redeem_authorization_code("code-1", "cl_a") is None
    await registry.save_authorization_code("code-2", client_id="cl_a", ttl=10, **options)
    async with registry.engine.begin() as conn:
        await conn.execute(text("UPDATE authorization_codes SET expires_at = 0"))
    assert await registry.redeem_authorization_code("code-2", "cl_a") is None
    async with registry.engine.connect() as conn:
        hashes = (await conn.execute(text("SELECT code_hash FROM authorization_codes"))).all()
    assert all("code-" not in row[0] for row in hashes)


async def test_expired_codes_are_purged_after_the_replay_window(registry):
    """Codes are one row per sign-in: without a purge the table grows for ever. A code
    that expired long ago goes; one just spent stays, so its replay is still caught."""
    options = dict(
        username=_name(),
        redirect_uri="http://127.0.0.1/cb",
        scope="a",
        code_challenge="c" * 43,
        code_challenge_method="S256",
    )
    for code in ("purge-old", "purge-spent", "purge-live"):
        await registry.save_authorization_code(code, client_id="cl_p", ttl=60, **options)
    now = time.time()
    async with registry.engine.begin() as conn:
        await conn.execute(
            text("UPDATE authorization_codes SET expires_at = :t WHERE code_hash = :h"),
            {"t": now - 2 * 86400, "h": hash_credential("purge-old")},
        )
    assert await registry.redeem_authorization_code("purge-spent", "cl_p") is not None
    assert await registry.purge_authorization_codes(now - 86400) >= 1
    async with registry.engine.connect() as conn:
        left = (
            await conn.execute(
                text("SELECT code_hash FROM authorization_codes WHERE client_id = 'cl_p'")
            )
        ).scalars()
        assert set(left) == {hash_credential("purge-spent"), hash_credential("purge-live")}
    assert await registry.redeem_authorization_code("purge-spent", "cl_p") is None  # replay
    assert await registry.redeem_authorization_code("purge-live", "cl_p") is not None
    assert await registry.purge_authorization_codes(now - 86400) == 0


async def test_refresh_rotation_and_reuse_revokes_the_family(registry):
    username = _name()
    family = await registry.start_refresh_family("cl_a", username, "a b", 3600, None)
    first = await registry.issue_refresh_token(family, 600)
    assert await registry.use_refresh_token(first, "cl_b") is None  # not its client
    spent = await registry.use_refresh_token(first, "cl_a")
    assert spent is not None and spent.id == family and spent.scope == "a b"
    second = await registry.issue_refresh_token(family, 600)
    assert await registry.use_refresh_token(first, "cl_a") is None  # reuse...
    assert await registry.refresh_family_revoked(family)
    assert await registry.use_refresh_token(second, "cl_a") is None  # ...ends the family


async def test_disabling_a_user_ends_their_refresh_families(registry):
    username = _name()
    await registry.create_user(username, PASSWORD, "cus_0003")
    family = await registry.start_refresh_family("cl_a", username, "", 3600, None)
    token = await registry.issue_refresh_token(family, 600)
    assert (await registry.disable_user(username)).disabled
    assert await registry.use_refresh_token(token, "cl_a") is None
    assert (await registry.check_password(username, PASSWORD)).outcome == "disabled"


async def test_public_clients_have_redirect_uris_and_no_secret(registry):
    client = await registry.create_public_client(
        "app", ["com.example.app:/cb", "http://127.0.0.1/cb"], ["a"]
    )
    again = await registry.client(client.client_id)
    assert again.public_client and again.redirect_uris == (
        "com.example.app:/cb",
        "http://127.0.0.1/cb",
    )
    assert again.grant_types == {"authorization_code", "refresh_token"}
    assert await registry.authenticate_client(client.client_id, "") is None
    with pytest.raises(RegistryError):
        await registry.create_public_client("app", [], ["a"])


V2_CLIENTS = """CREATE TABLE oauth_clients (
    client_id VARCHAR(64) PRIMARY KEY, secret_hash VARCHAR(64) NOT NULL,
    name VARCHAR(128) NOT NULL, scopes TEXT NOT NULL, consumer_id VARCHAR(64) NOT NULL,
    application_id VARCHAR(64), kind VARCHAR(16) NOT NULL, api VARCHAR(64),
    tier VARCHAR(16), plan VARCHAR(64), grant_types TEXT NOT NULL,
    created_at FLOAT NOT NULL, revoked_at FLOAT, tokens_issued INTEGER NOT NULL,
    last_token_at FLOAT)"""


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_version_2_registry_migrates_to_the_current_version(tmp_path, backend):
    if backend == "sqlite":
        asyncio.run(_migrate(f"sqlite:///{tmp_path}/v2.db"))
    else:
        with postgres_database("migrate") as url:
            asyncio.run(_migrate(url))


async def _migrate(url: str) -> None:
    store = Registry.from_url(url)
    async with store.engine.begin() as conn:  # a version-2 registry with one client
        await conn.execute(text(V2_CLIENTS))
        await conn.execute(
            text(
                "INSERT INTO oauth_clients VALUES ('cl_old', 'h', 'old', 'a', 'old', NULL, "
                "'client', NULL, NULL, NULL, 'client_credentials', 1.0, NULL, 0, NULL)"
            )
        )
        await conn.execute(
            text("CREATE TABLE tiergate_schema (id INTEGER PRIMARY KEY, version INTEGER NOT NULL)")
        )
        await conn.execute(text("INSERT INTO tiergate_schema VALUES (1, 2)"))
    try:
        # Through version 3 (users, public clients) up to the current version.
        assert await store.start() == SCHEMA_VERSION >= 3
        old = await store.client("cl_old")
        assert old.client_type == "confidential" and old.redirect_uris == ()
        await store.create_user(_name(), PASSWORD, "cus_0001")
    finally:
        await store.aclose()


async def test_the_revocation_refresh_purges_old_codes_on_its_purge_turn(registry):
    """The node's periodic job is what calls the purge (every PURGE_EVERY seconds)."""
    options = dict(
        username=_name(),
        redirect_uri="http://127.0.0.1/cb",
        scope="a",
        code_challenge="c" * 43,
        code_challenge_method="S256",
    )
    await registry.save_authorization_code("sweep-old", client_id="cl_s", ttl=60, **options)
    async with registry.engine.begin() as conn:
        await conn.execute(
            text("UPDATE authorization_codes SET expires_at = 1 WHERE code_hash = :h"),
            {"h": hash_credential("sweep-old")},
        )
    cache = RevocationCache(registry, interval=1)
    await cache.refresh()  # not its purge turn yet: the code stays
    async with registry.engine.connect() as conn:
        query = text("SELECT COUNT(*) FROM authorization_codes WHERE client_id = 'cl_s'")
        assert (await conn.execute(query)).scalar_one() == 1
    cache._purged -= PURGE_EVERY + 1  # the purge turn has come
    await cache.refresh()
    async with registry.engine.connect() as conn:
        assert (await conn.execute(query)).scalar_one() == 0
