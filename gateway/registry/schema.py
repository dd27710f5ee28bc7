"""Registry tables and the start-up schema creation, safe when several nodes start at once.

Times are POSIX seconds (float). Secrets are never stored: client secrets, API keys,
authorization codes and refresh tokens are kept as SHA-256 hex digests (they are 256-bit
random values, so a fast hash is right); user passwords as argon2id hashes.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.schema import CreateIndex, CreateTable

SCHEMA_VERSION = 4
# version reached → statements that bring the previous version there
MIGRATIONS: dict[int, list[str]] = {
    # API keys' grants beside their API list: scopes and (optionally) operations.
    2: [
        "ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE api_keys ADD COLUMN operations TEXT",
    ],
    # End users: public clients with redirect URIs (the new tables are created above).
    3: [
        "ALTER TABLE oauth_clients ADD COLUMN client_type VARCHAR(16) NOT NULL "
        "DEFAULT 'confidential'",
        "ALTER TABLE oauth_clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT ''",
    ],
    # Client secrets rotate with an overlap: the previous secret's hash and its end; the
    # audit trail is a table of its own (created from the metadata).
    4: [
        "ALTER TABLE oauth_clients ADD COLUMN previous_secret_hash VARCHAR(64)",
        "ALTER TABLE oauth_clients ADD COLUMN previous_secret_until FLOAT",
    ],
}
# Any constant: the key of the PostgreSQL advisory lock that serialises schema work.
_ADVISORY_LOCK_KEY = 0x7469657267617465  # "tiergate"

metadata = MetaData()

schema_version = Table(
    "tiergate_schema",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", Integer, nullable=False),
)

consumers = Table(
    "consumers",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("plan", String(64)),
    Column("description", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
)

applications = Table(
    "applications",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("consumer_id", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", Float, nullable=False),
)

oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(64), primary_key=True),
    Column("secret_hash", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("scopes", Text, nullable=False, default=""),  # space-separated
    Column("consumer_id", String(64), nullable=False),
    Column("application_id", String(64)),
    Column("kind", String(16), nullable=False, default="client"),  # client | service
    Column("api", String(64)),
    Column("tier", String(16)),
    Column("plan", String(64)),
    Column("grant_types", Text, nullable=False, default="client_credentials"),
    Column("created_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("tokens_issued", Integer, nullable=False, default=0),
    Column("last_token_at", Float),
    Column("client_type", String(16), nullable=False, default="confidential"),  # or public
    Column("redirect_uris", Text, nullable=False, default=""),  # space-separated, exact match
    Column("previous_secret_hash", String(64)),  # still accepted until previous_secret_until
    Column("previous_secret_until", Float),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("prefix", String(16), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("consumer_id", String(64), nullable=False),
    Column("plan", String(64), nullable=False),
    Column("apis", Text, nullable=False, default=""),  # comma-separated
    Column("scopes", Text, nullable=False, default=""),  # space-separated scope grants
    Column("operations", Text),  # comma-separated operation grants; NULL: every operation
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float),
    Column("revoked_at", Float),
    Column("replaced_by", String(32)),
    Column("last_used_at", Float),
)

plans = Table(
    "plans",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("limits", Text, nullable=False, default=""),
)

signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("alg", String(8), nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),  # JSON
    Column("created_at", Float, nullable=False),
    Column("activates_at", Float, nullable=False),  # signs from then on (JWKS has it before)
    Column("retire_after", Float),  # leaves the JWKS then; None while current
)

revoked_tokens = Table(
    "revoked_tokens",
    metadata,
    Column("jti", String(64), primary_key=True),
    Column("exp", Float, nullable=False),
    Column("revoked_at", Float, nullable=False),
)

users = Table(
    "users",
    metadata,
    Column("username", String(64), primary_key=True),
    Column("password_hash", Text, nullable=False),  # argon2id, PHC string
    Column("customer_id", String(64), nullable=False),  # cus_NNNN
    Column("created_at", Float, nullable=False),
    Column("disabled_at", Float),
    Column("failed_attempts", Integer, nullable=False, default=0),  # since the last success
    Column("locked_until", Float),  # sign-in refused until then
    Column("last_failure_at", Float),
    Column("last_sign_in_at", Float),
)

authorization_codes = Table(
    "authorization_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("redirect_uri", Text, nullable=False),
    Column("scope", Text, nullable=False, default=""),
    Column("code_challenge", String(128), nullable=False),
    Column("code_challenge_method", String(8), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),  # single use: set once, atomically
    Column("family_id", String(64)),  # the refresh-token family its tokens started
)

refresh_families = Table(
    "refresh_families",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("client_id", String(64), nullable=False),
    Column("username", String(64), nullable=False),
    Column("scope", Text, nullable=False, default=""),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),  # absolute end of the sign-in
    Column("revoked_at", Float),
    Column("revoked_reason", String(32)),  # reuse | revoked | user-disabled
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(64), nullable=False),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
    Column("used_at", Float),  # rotated: a second use revokes the family
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", Float, nullable=False),
    Column("actor", String(160), nullable=False),  # admin-token:NAME | cli:USER
    Column("action", String(200), nullable=False),  # "POST /admin/keys", "keys revoke"...
    Column("target", String(256)),
    Column("before", Text),  # JSON, secrets redacted
    Column("after", Text),  # JSON, secrets redacted
)

INDEXES = [
    Index("ix_api_keys_consumer", api_keys.c.consumer_id),
    Index("ix_revoked_tokens_revoked_at", revoked_tokens.c.revoked_at),
    Index("ix_applications_consumer", applications.c.consumer_id),
    Index("ix_refresh_tokens_family", refresh_tokens.c.family_id),
    Index("ix_authorization_codes_expires", authorization_codes.c.expires_at),
    Index("ix_audit_log_at", audit_log.c.at),
]


async def create_schema(engine: AsyncEngine) -> int:
    """Create missing tables and run pending migrations; return the schema version."""
    async with _schema_lock(engine) as conn:
        return await _create_and_migrate(conn)


async def create_tables(engine: AsyncEngine, tables: MetaData) -> None:
    """Create another part's own tables (the catalogue's sessions) under the same lock as
    the registry's schema work: concurrent nodes would otherwise race on PostgreSQL's
    catalogue, even with IF NOT EXISTS."""
    async with _schema_lock(engine) as conn:
        for table in tables.sorted_tables:
            await conn.execute(CreateTable(table, if_not_exists=True))


@contextlib.asynccontextmanager
async def _schema_lock(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """One transaction that holds the schema lock, committed at the end.

    PostgreSQL: an advisory lock, so concurrent nodes queue up. SQLite: `BEGIN IMMEDIATE`
    takes the write lock; the busy timeout makes others wait.
    """
    async with engine.connect() as conn:
        if conn.dialect.name == "sqlite":
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.begin()
            await conn.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK_KEY}
            )
        try:
            yield conn
        except BaseException:
            await conn.rollback()
            raise
        await conn.commit()


async def _create_and_migrate(conn: AsyncConnection) -> int:
    for table in metadata.sorted_tables:
        await conn.execute(CreateTable(table, if_not_exists=True))
    for index in INDEXES:
        await conn.execute(CreateIndex(index, if_not_exists=True))
    current = (await conn.execute(select(schema_version.c.version))).scalar()
    if current is None:
        await conn.execute(schema_version.insert().values(id=1, version=SCHEMA_VERSION))
        return SCHEMA_VERSION
    if current > SCHEMA_VERSION:
        raise RuntimeError(
            f"the registry schema is version {current}, newer than this Tiergate "
            f"(version {SCHEMA_VERSION}); upgrade Tiergate"
        )
    for target in range(current + 1, SCHEMA_VERSION + 1):
        for statement in MIGRATIONS.get(target, []):
            await conn.exec_driver_sql(statement)
        await conn.execute(schema_version.update().values(version=target))
    return SCHEMA_VERSION
