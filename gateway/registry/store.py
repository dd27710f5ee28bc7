"""`Registry`: the async repository over the registry tables (SQLAlchemy Core)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.registry import schema as t
from gateway.registry.credentials import (
    certificate_credential,
    certificate_prefix,
    hash_credential,
    matches,
    new_api_key,
    new_id,
    new_secret,
)
from gateway.registry.end_users import EndUsers
from gateway.registry.engine import create_engine
from gateway.registry.errors import Conflict, NotFound, RegistryError
from gateway.registry.records import (
    ApiKeyRecord,
    ApplicationRecord,
    ClientRecord,
    ConsumerRecord,
    SigningKeyRecord,
)

_DUMMY_HASH = hash_credential("tiergate-no-such-client")
__all__ = ["Conflict", "NotFound", "Registry", "RegistryError"]


class Registry(EndUsers):
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Registry:
        return cls(create_engine(url))

    async def start(self) -> int:
        """Create or migrate the schema; returns its version."""
        return await t.create_schema(self.engine)

    async def aclose(self) -> None:
        await self.engine.dispose()

    # -- consumers and applications ---------------------------------------------

    async def create_consumer(
        self, consumer_id: str, plan: str | None = None, description: str = ""
    ) -> ConsumerRecord:
        record = ConsumerRecord(consumer_id, plan, description, time.time())
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    t.consumers.insert().values(
                        id=consumer_id,
                        plan=plan,
                        description=description,
                        created_at=record.created_at,
                    )
                )
        except IntegrityError:
            raise Conflict(f"consumer {consumer_id!r} already exists") from None
        return record

    async def ensure_consumer(self, consumer_id: str, plan: str | None = None) -> ConsumerRecord:
        existing = await self.consumer(consumer_id)
        if existing is not None:
            return existing
        try:
            return await self.create_consumer(consumer_id, plan)
        except Conflict:  # created meanwhile by another node
            found = await self.consumer(consumer_id)
            assert found is not None
            return found

    async def consumer(self, consumer_id: str) -> ConsumerRecord | None:
        rows = await self._select(t.consumers.select().where(t.consumers.c.id == consumer_id))
        return _consumer(rows[0]) if rows else None

    async def list_consumers(self) -> list[ConsumerRecord]:
        rows = await self._select(t.consumers.select().order_by(t.consumers.c.id))
        return [_consumer(row) for row in rows]

    async def create_application(self, consumer_id: str, name: str) -> ApplicationRecord:
        await self._require_consumer(consumer_id)
        record = ApplicationRecord(new_id("app"), consumer_id, name, time.time())
        async with self.engine.begin() as conn:
            await conn.execute(
                t.applications.insert().values(
                    id=record.id, consumer_id=consumer_id, name=name, created_at=record.created_at
                )
            )
        return record

    async def list_applications(self) -> list[ApplicationRecord]:
        rows = await self._select(t.applications.select().order_by(t.applications.c.created_at))
        return [ApplicationRecord(r.id, r.consumer_id, r.name, r.created_at) for r in rows]

    async def _require_consumer(self, consumer_id: str) -> ConsumerRecord:
        found = await self.consumer(consumer_id)
        if found is None:
            raise NotFound("no such consumer")
        return found

    # -- OAuth clients -------------------------------------------------------------

    async def create_client(
        self,
        name: str,
        scopes: Iterable[str],
        kind: str = "client",
        api: str | None = None,
        tier: str | None = None,
        *,
        consumer: str | None = None,
        plan: str | None = None,
        application: str | None = None,
        grant_types: Iterable[str] = ("client_credentials",),
        client_id: str | None = None,
        redirect_uris: Iterable[str] = (),
    ) -> tuple[ClientRecord, str]:
        """Register a client; returns (record, secret). The secret is not kept.

        With `redirect_uris` the client may also use the authorization_code grant."""
        consumer_id = consumer or name
        await self.ensure_consumer(consumer_id)
        if application is not None:
            rows = await self._select(
                t.applications.select().where(
                    t.applications.c.id == application,
                    t.applications.c.consumer_id == consumer_id,
                )
            )
            if not rows:
                raise NotFound("no such application for this consumer")
        secret = new_secret()
        record = ClientRecord(
            client_id=client_id or new_id("cl"),
            name=name,
            consumer_id=consumer_id,
            scopes=frozenset(scopes),
            kind=kind,
            api=api,
            tier=tier,
            plan=plan,
            grant_types=frozenset(grant_types),
            application_id=application,
            created_at=time.time(),
            revoked_at=None,
            redirect_uris=tuple(redirect_uris),
        )
        await self._insert_client(record, hash_credential(secret))
        return record, secret

    async def create_public_client(
        self,
        name: str,
        redirect_uris: Iterable[str],
        scopes: Iterable[str],
        *,
        consumer: str | None = None,
        client_id: str | None = None,
    ) -> ClientRecord:
        """Register a public client (an app that cannot keep a secret): authorization_code
        with PKCE and refresh_token only, redirects to exactly these URIs."""
        uris = tuple(dict.fromkeys(redirect_uris))
        if not uris:
            raise RegistryError("a public client needs at least one redirect URI")
        consumer_id = consumer or name
        await self.ensure_consumer(consumer_id)
        record = ClientRecord(
            client_id=client_id or new_id("cl"),
            name=name,
            consumer_id=consumer_id,
            scopes=frozenset(scopes),
            kind="client",
            api=None,
            tier=None,
            plan=None,
            grant_types=frozenset({"authorization_code", "refresh_token"}),
            application_id=None,
            created_at=time.time(),
            revoked_at=None,
            client_type="public",
            redirect_uris=uris,
        )
        await self._insert_client(record, "")  # no secret: an empty hash never matches
        return record

    async def _insert_client(self, record: ClientRecord, secret_hash: str) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    t.oauth_clients.insert().values(**_client_row(record), secret_hash=secret_hash)
                )
        except IntegrityError:
            raise Conflict(f"client {record.client_id!r} already exists") from None

    async def provision_service_client(
        self, api: str, tier: str, scopes: Iterable[str], keep: str | None = None
    ) -> tuple[ClientRecord, str]:
        """Create or update the service client `svc-<api>`; returns (record, its secret).

        `keep` is the secret the caller holds: while the client accepts it (not revoked,
        current or in its rotation overlap) it stays; otherwise the client is re-keyed."""
        client_id = f"svc-{api}"
        existing = await self.client(client_id)
        if existing is None:
            try:
                return await self.create_client(
                    client_id, scopes, "service", api, tier, client_id=client_id
                )
            except Conflict:
                pass  # another node created it meanwhile: re-key it below
        secret = keep if keep and existing and _accepts(existing, keep, time.time()) else None
        values: dict[str, Any] = {}
        if secret is None:
            secret = new_secret()
            values = {"secret_hash": hash_credential(secret), "previous_secret_hash": None}
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.oauth_clients)
                .where(t.oauth_clients.c.client_id == client_id)
                .values(
                    **values,
                    scopes=" ".join(sorted(set(scopes))),
                    kind="service",
                    api=api,
                    tier=tier,
                    revoked_at=None,
                )
            )
        record = await self.client(client_id)
        assert record is not None
        return record, secret

    async def client(self, client_id: str) -> ClientRecord | None:
        rows = await self._select(
            t.oauth_clients.select().where(t.oauth_clients.c.client_id == client_id)
        )
        return _client(rows[0]) if rows else None

    async def authenticate_client(self, client_id: str, secret: str) -> ClientRecord | None:
        """The client if the secret matches (the current one, or the previous one during a
        rotation's overlap) and it is not revoked; same work either way."""
        record = await self.client(client_id)
        if record is None:
            matches(secret, _DUMMY_HASH)
            return None
        if not _accepts(record, secret, time.time()) or record.revoked_at is not None:
            return None
        return record

    async def rotate_client_secret(
        self, client_id: str, overlap_seconds: float
    ) -> tuple[ClientRecord, str]:
        """A new secret; the current one stays valid for `overlap_seconds` more."""
        record = await self.client(client_id)
        if record is None:
            raise NotFound("no such client")
        if record.revoked_at is not None:
            raise Conflict("the client is revoked")
        secret = new_secret()
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.oauth_clients)
                .where(t.oauth_clients.c.client_id == client_id)
                .values(
                    secret_hash=hash_credential(secret),
                    previous_secret_hash=record.secret_hash if overlap_seconds > 0 else None,
                    previous_secret_until=time.time() + overlap_seconds,
                )
            )
        rotated = await self.client(client_id)
        assert rotated is not None
        return rotated, secret

    async def list_clients(self) -> list[ClientRecord]:
        rows = await self._select(t.oauth_clients.select().order_by(t.oauth_clients.c.created_at))
        return [_client(row) for row in rows]

    async def revoke_client(self, client_id: str) -> ClientRecord:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.oauth_clients)
                .where(
                    t.oauth_clients.c.client_id == client_id,
                    t.oauth_clients.c.revoked_at.is_(None),
                )
                .values(revoked_at=time.time())
            )
        record = await self.client(client_id)
        if record is None:
            raise NotFound("no such client")
        return record

    async def record_token_issued(self, client_id: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.oauth_clients)
                .where(t.oauth_clients.c.client_id == client_id)
                .values(
                    tokens_issued=t.oauth_clients.c.tokens_issued + 1, last_token_at=time.time()
                )
            )

    # -- API keys --------------------------------------------------------------------

    async def create_api_key(
        self,
        consumer: str,
        plan: str,
        apis: Iterable[str],
        expires_in: float | None = None,
        scopes: Iterable[str] = (),
        operations: Iterable[str] | None = None,
        certificate_sha256: str | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        """Issue a partner key; returns (record, plaintext). Only the hash is stored.

        `scopes` are checked like a token's against the operation's apiKey requirement;
        `operations` (operationIds or "METHOD /template"), when given, limit the key to them.
        With `certificate_sha256` the credential is that client certificate (mTLS), found
        by its fingerprint; the "plaintext" returned is then the fingerprint's tag.
        """
        await self.ensure_consumer(consumer, plan)
        grants = _Grants(frozenset(scopes), None if operations is None else frozenset(operations))
        credential = None
        if certificate_sha256 is not None:
            credential = (
                certificate_prefix(certificate_sha256),
                certificate_credential(certificate_sha256),
            )
        return await self._insert_key(
            consumer, plan, frozenset(apis), expires_in, grants, credential
        )

    async def _insert_key(
        self,
        consumer: str,
        plan: str,
        apis: frozenset[str],
        expires_in: float | None,
        grants: _Grants,
        credential: tuple[str, str] | None = None,
    ) -> tuple[ApiKeyRecord, str]:
        now = time.time()
        prefix, plaintext = credential or new_api_key()
        record = ApiKeyRecord(
            id=new_id("key"),
            prefix=prefix,
            consumer_id=consumer,
            plan=plan,
            apis=apis,
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
            revoked_at=None,
            scopes=grants.scopes,
            operations=grants.operations,
        )
        async with self.engine.begin() as conn:
            await conn.execute(
                t.api_keys.insert().values(
                    id=record.id,
                    prefix=prefix,
                    key_hash=hash_credential(plaintext),
                    consumer_id=consumer,
                    plan=plan,
                    apis=",".join(sorted(apis)),
                    scopes=" ".join(sorted(grants.scopes)),
                    operations=None
                    if grants.operations is None
                    else ",".join(sorted(grants.operations)),
                    created_at=now,
                    expires_at=record.expires_at,
                )
            )
        return record, plaintext

    async def api_key_by_hash(self, key_hash: str) -> ApiKeyRecord | None:
        rows = await self._select(t.api_keys.select().where(t.api_keys.c.key_hash == key_hash))
        return _api_key(rows[0]) if rows else None

    async def api_key(self, key_id: str) -> ApiKeyRecord | None:
        rows = await self._select(t.api_keys.select().where(t.api_keys.c.id == key_id))
        return _api_key(rows[0]) if rows else None

    async def list_api_keys(self) -> list[ApiKeyRecord]:
        rows = await self._select(t.api_keys.select().order_by(t.api_keys.c.created_at))
        return [_api_key(row) for row in rows]

    async def revoke_api_key(self, key_id: str) -> ApiKeyRecord:
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.api_keys)
                .where(t.api_keys.c.id == key_id, t.api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        record = await self.api_key(key_id)
        if record is None:
            raise NotFound("no such API key")
        return record

    async def rotate_api_key(self, key_id: str, overlap_seconds: float) -> tuple[ApiKeyRecord, str]:
        """A new key for the same consumer, plan and APIs; the old one expires after the
        overlap (or earlier if it already expires sooner). Returns (new record, plaintext)."""
        old = await self.api_key(key_id)
        if old is None:
            raise NotFound("no such API key")
        now = time.time()
        if not old.usable(now):
            raise Conflict(f"API key {key_id!r} is {old.state(now)}; create a new key instead")
        if old.prefix.startswith("x509:"):
            raise Conflict(
                f"{key_id!r} is a client certificate; register the new certificate with "
                "`keys create --cert FILE` and revoke this one when it is retired"
            )
        grants = _Grants(old.scopes, old.operations)
        new, plaintext = await self._insert_key(old.consumer_id, old.plan, old.apis, None, grants)
        ends = now + max(0.0, overlap_seconds)
        if old.expires_at is not None:
            ends = min(ends, old.expires_at)
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.api_keys)
                .where(t.api_keys.c.id == key_id)
                .values(expires_at=ends, replaced_by=new.id)
            )
        return new, plaintext

    async def mark_api_keys_used(self, last_used: Mapping[str, float]) -> None:
        """Record when keys were last used (the API-key policy calls this in batches)."""
        if not last_used:
            return
        async with self.engine.begin() as conn:
            for key_id, when in last_used.items():
                await conn.execute(
                    update(t.api_keys).where(t.api_keys.c.id == key_id).values(last_used_at=when)
                )

    # -- plans (config is the source of truth; the registry keeps names for reference) --

    async def sync_plans(self, limits_by_plan: Mapping[str, str]) -> None:
        async with self.engine.begin() as conn:
            for name, limits in limits_by_plan.items():
                changed = await conn.execute(
                    update(t.plans).where(t.plans.c.name == name).values(limits=limits)
                )
                if changed.rowcount == 0:
                    try:
                        async with conn.begin_nested():
                            await conn.execute(t.plans.insert().values(name=name, limits=limits))
                    except IntegrityError:
                        pass  # inserted by another node meanwhile

    async def list_plans(self) -> dict[str, str]:
        rows = await self._select(t.plans.select().order_by(t.plans.c.name))
        return {row.name: row.limits for row in rows}

    # -- signing keys ------------------------------------------------------------------

    async def signing_keys(self, now: float | None = None) -> list[SigningKeyRecord]:
        """Keys still published (not past retire_after), newest first."""
        now = time.time() if now is None else now
        rows = await self._select(
            t.signing_keys.select()
            .where(
                or_(t.signing_keys.c.retire_after.is_(None), t.signing_keys.c.retire_after > now)
            )
            .order_by(t.signing_keys.c.activates_at.desc(), t.signing_keys.c.created_at.desc())
        )
        return [_signing_key(row) for row in rows]

    async def add_signing_key(
        self, key: SigningKeyRecord, retire_others_after: float | None, only_if_none: bool = False
    ) -> bool:
        """Store a key; the keys published so far retire at `retire_others_after`.

        With `only_if_none`, nothing happens when a published key exists (start-up on
        several nodes at once: one key wins). Returns whether the key was stored.
        """
        async with self.engine.connect() as conn:
            if conn.dialect.name == "sqlite":
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
            else:
                await conn.begin()
                await conn.exec_driver_sql("LOCK TABLE signing_keys IN EXCLUSIVE MODE")
            try:
                if only_if_none:
                    live = select(t.signing_keys.c.kid).where(
                        or_(
                            t.signing_keys.c.retire_after.is_(None),
                            t.signing_keys.c.retire_after > time.time(),
                        )
                    )
                    if (await conn.execute(live)).first() is not None:
                        await conn.rollback()
                        return False
                if retire_others_after is not None:
                    await conn.execute(
                        update(t.signing_keys)
                        .where(
                            or_(
                                t.signing_keys.c.retire_after.is_(None),
                                t.signing_keys.c.retire_after > retire_others_after,
                            )
                        )
                        .values(retire_after=retire_others_after)
                    )
                await conn.execute(
                    t.signing_keys.insert().values(
                        kid=key.kid,
                        alg=key.alg,
                        private_pem=key.private_pem,
                        public_jwk=json.dumps(key.public_jwk),
                        created_at=key.created_at,
                        activates_at=key.activates_at,
                        retire_after=key.retire_after,
                    )
                )
            except BaseException:
                await conn.rollback()
                raise
            await conn.commit()
        return True

    # -- revoked tokens ------------------------------------------------------------------

    async def revoke_token(self, jti: str, exp: float) -> None:
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    t.revoked_tokens.insert().values(jti=jti, exp=exp, revoked_at=time.time())
                )
        except IntegrityError:
            pass  # already revoked

    async def is_token_revoked(self, jti: str) -> bool:
        """Read by introspection on every call, so a revoke on any node counts at once."""
        rows = await self._select(
            select(t.revoked_tokens.c.jti).where(t.revoked_tokens.c.jti == jti).limit(1)
        )
        return bool(rows)

    async def revoked_since(self, ts: float) -> list[tuple[str, float]]:
        """(jti, exp) of tokens revoked at or after `ts` that have not expired yet."""
        rows = await self._select(
            select(t.revoked_tokens.c.jti, t.revoked_tokens.c.exp).where(
                and_(t.revoked_tokens.c.revoked_at >= ts, t.revoked_tokens.c.exp > time.time())
            )
        )
        return [(row.jti, row.exp) for row in rows]

    async def purge_revoked_tokens(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        async with self.engine.begin() as conn:
            await conn.execute(t.revoked_tokens.delete().where(t.revoked_tokens.c.exp <= now))


def _consumer(row: Any) -> ConsumerRecord:
    return ConsumerRecord(row.id, row.plan, row.description or "", row.created_at)


def _accepts(record: ClientRecord, secret: str, now: float) -> bool:
    """Whether `secret` is the client's current secret, or its previous one still in its
    overlap; both hashes are always compared (constant time)."""
    current = matches(secret, record.secret_hash)
    previous = matches(secret, record.previous_secret_hash or _DUMMY_HASH)
    in_overlap = record.previous_secret_until is not None and now < record.previous_secret_until
    return current or (previous and in_overlap and record.previous_secret_hash is not None)


def _client_row(record: ClientRecord) -> dict[str, Any]:
    return {
        "client_id": record.client_id,
        "name": record.name,
        "scopes": " ".join(sorted(record.scopes)),
        "consumer_id": record.consumer_id,
        "application_id": record.application_id,
        "kind": record.kind,
        "api": record.api,
        "tier": record.tier,
        "plan": record.plan,
        "grant_types": " ".join(sorted(record.grant_types)),
        "created_at": record.created_at,
        "tokens_issued": 0,
        "client_type": record.client_type,
        "redirect_uris": " ".join(record.redirect_uris),
    }


def _client(row: Any) -> ClientRecord:
    return ClientRecord(
        client_id=row.client_id,
        name=row.name,
        consumer_id=row.consumer_id,
        scopes=frozenset(row.scopes.split()),
        kind=row.kind,
        api=row.api,
        tier=row.tier,
        plan=row.plan,
        grant_types=frozenset(row.grant_types.split()),
        application_id=row.application_id,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        tokens_issued=row.tokens_issued,
        last_token_at=row.last_token_at,
        secret_hash=row.secret_hash,
        client_type=row.client_type,
        redirect_uris=tuple(row.redirect_uris.split()),
        previous_secret_hash=row.previous_secret_hash,
        previous_secret_until=row.previous_secret_until,
    )


@dataclass(frozen=True, slots=True)
class _Grants:
    scopes: frozenset[str]
    operations: frozenset[str] | None


def _api_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        prefix=row.prefix,
        consumer_id=row.consumer_id,
        plan=row.plan,
        apis=frozenset(a for a in row.apis.split(",") if a),
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        replaced_by=row.replaced_by,
        last_used_at=row.last_used_at,
        scopes=frozenset((row.scopes or "").split()),
        operations=None
        if row.operations is None
        else frozenset(o for o in row.operations.split(",") if o),
    )


def _signing_key(row: Any) -> SigningKeyRecord:
    return SigningKeyRecord(
        kid=row.kid,
        alg=row.alg,
        private_pem=row.private_pem,
        public_jwk=json.loads(row.public_jwk),
        created_at=row.created_at,
        activates_at=row.activates_at,
        retire_after=row.retire_after,
    )
