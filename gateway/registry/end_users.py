"""End users and what their sign-ins leave behind: authorization codes (single use,
short-lived) and refresh-token families (rotated; a reused token revokes its family,
RFC 9700 §4.14). Codes and refresh tokens are stored as SHA-256 digests only."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.config.models import CUSTOMER_ID_PATTERN
from gateway.registry import schema as t
from gateway.registry.credentials import hash_credential
from gateway.registry.errors import Conflict, NotFound, RegistryError
from gateway.registry.passwords import hash_password, verify_password
from gateway.registry.records import AuthorizationCodeRecord, RefreshFamilyRecord, UserRecord

USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")
CUSTOMER_ID = re.compile(CUSTOMER_ID_PATTERN)
BAD_USERNAME = (
    "a username is 1-64 letters, digits, '.', '_', '@' or '-', starting with one of the first two"
)
BAD_CUSTOMER = "a customer id looks like cus_0001"
LOCK_AFTER = 5  # consecutive failures before the account locks
LOCK_SECONDS = 30.0  # first lock; doubles with each further failure
MAX_LOCK_SECONDS = 900.0

SignInOutcome = Literal["ok", "invalid", "locked", "disabled"]


@dataclass(frozen=True, slots=True)
class SignIn:
    outcome: SignInOutcome
    user: UserRecord | None = None
    locked_until: float | None = None


def lock_for(failures: int) -> float:
    """Seconds an account stays locked after `failures` consecutive failures (0: none)."""
    if failures < LOCK_AFTER:
        return 0.0
    return min(LOCK_SECONDS * 2 ** (failures - LOCK_AFTER), MAX_LOCK_SECONDS)


class EndUsers:
    """The registry's end-user half (mixed into `Registry`)."""

    engine: AsyncEngine

    # -- users ---------------------------------------------------------------------

    async def create_user(self, username: str, password: str, customer_id: str) -> UserRecord:
        if not USERNAME.fullmatch(username):
            raise RegistryError(BAD_USERNAME)
        if not CUSTOMER_ID.fullmatch(customer_id):
            raise RegistryError(BAD_CUSTOMER)
        try:
            password_hash = hash_password(password)
        except ValueError as error:
            raise RegistryError(str(error)) from None
        record = UserRecord(username, customer_id, time.time())
        try:
            async with self.engine.begin() as conn:
                await conn.execute(
                    t.users.insert().values(
                        username=username,
                        password_hash=password_hash,
                        customer_id=customer_id,
                        created_at=record.created_at,
                        failed_attempts=0,
                    )
                )
        except IntegrityError:
            raise Conflict(f"user {username!r} already exists") from None
        return record

    async def user(self, username: str) -> UserRecord | None:
        rows = await self._select(t.users.select().where(t.users.c.username == username))
        return _user(rows[0]) if rows else None

    async def list_users(self) -> list[UserRecord]:
        rows = await self._select(t.users.select().order_by(t.users.c.username))
        return [_user(row) for row in rows]

    async def disable_user(self, username: str) -> UserRecord:
        """Disable sign-in and end every refresh-token family of the user."""
        now = time.time()
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.users)
                .where(t.users.c.username == username, t.users.c.disabled_at.is_(None))
                .values(disabled_at=now)
            )
            await conn.execute(
                update(t.refresh_families)
                .where(
                    t.refresh_families.c.username == username,
                    t.refresh_families.c.revoked_at.is_(None),
                )
                .values(revoked_at=now, revoked_reason="user-disabled")
            )
        record = await self.user(username)
        if record is None:
            raise NotFound("no such user")
        return record

    async def check_password(self, username: str, password: str) -> SignIn:
        """Verify a sign-in; count failures and lock the account after LOCK_AFTER of them.

        An unknown user costs one password hash like a known one."""
        now = time.time()
        rows = await self._select(t.users.select().where(t.users.c.username == username))
        row = rows[0] if rows else None
        if row is not None and row.locked_until is not None and row.locked_until > now:
            return SignIn("locked", locked_until=row.locked_until)
        ok = await verify_password(row.password_hash if row is not None else None, password)
        if row is None:
            return SignIn("invalid")
        if not ok:
            return await self._failed(username, now)
        if row.disabled_at is not None:
            return SignIn("disabled")
        async with self.engine.begin() as conn:
            await conn.execute(
                update(t.users)
                .where(t.users.c.username == username)
                .values(failed_attempts=0, locked_until=None, last_sign_in_at=now)
            )
        return SignIn("ok", _user(row))

    async def _failed(self, username: str, now: float) -> SignIn:
        async with self.engine.begin() as conn:
            failures = (
                await conn.execute(
                    update(t.users)
                    .where(t.users.c.username == username)
                    .values(failed_attempts=t.users.c.failed_attempts + 1, last_failure_at=now)
                    .returning(t.users.c.failed_attempts)
                )
            ).scalar_one()
            seconds = lock_for(failures)
            if seconds:
                await conn.execute(
                    update(t.users)
                    .where(t.users.c.username == username)
                    .values(locked_until=now + seconds)
                )
        return SignIn("invalid", locked_until=now + seconds if seconds else None)

    # -- authorization codes ---------------------------------------------------------

    async def save_authorization_code(
        self,
        code: str,
        *,
        client_id: str,
        username: str,
        redirect_uri: str,
        scope: str,
        code_challenge: str,
        code_challenge_method: str,
        ttl: float,
    ) -> None:
        now = time.time()
        async with self.engine.begin() as conn:
            await conn.execute(
                t.authorization_codes.insert().values(
                    code_hash=hash_credential(code),
                    client_id=client_id,
                    username=username,
                    redirect_uri=redirect_uri,
                    scope=scope,
                    code_challenge=code_challenge,
                    code_challenge_method=code_challenge_method,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )

    async def redeem_authorization_code(
        self, code: str, client_id: str
    ) -> AuthorizationCodeRecord | None:
        """The code's record, marked used in the same statement: a code works once.

        A second use (RFC 6749 §4.1.2) ends the refresh-token family the first one started."""
        code_hash = hash_credential(code)
        now = time.time()
        codes = t.authorization_codes
        async with self.engine.begin() as conn:
            redeemed = await conn.execute(
                update(codes)
                .where(
                    codes.c.code_hash == code_hash,
                    codes.c.client_id == client_id,
                    codes.c.used_at.is_(None),
                    codes.c.expires_at > now,
                )
                .values(used_at=now)
            )
            row = (await conn.execute(codes.select().where(codes.c.code_hash == code_hash))).first()
            if redeemed.rowcount == 1 and row is not None:
                return AuthorizationCodeRecord(
                    code_hash=row.code_hash,
                    client_id=row.client_id,
                    username=row.username,
                    redirect_uri=row.redirect_uri,
                    scope=row.scope,
                    code_challenge=row.code_challenge,
                    code_challenge_method=row.code_challenge_method,
                    expires_at=row.expires_at,
                )
            if row is not None and row.used_at is not None and row.family_id is not None:
                await _revoke_family(conn, row.family_id, "code-reuse", now)
        return None

    async def purge_authorization_codes(self, expired_before: float) -> int:
        """Delete the codes that expired before `expired_before`; how many. A spent code
        is kept past its expiry for a while so that its replay is still recognised and
        ends the family it started (the caller chooses how long)."""
        codes = t.authorization_codes
        async with self.engine.begin() as conn:
            result = await conn.execute(codes.delete().where(codes.c.expires_at < expired_before))
        return int(result.rowcount or 0)

    # -- refresh-token families --------------------------------------------------------

    async def start_refresh_family(
        self, client_id: str, username: str, scope: str, lifetime: float, code_hash: str | None
    ) -> str:
        """A new family (one sign-in); returns its id. `code_hash` links the code it came from."""
        family_id = f"rf_{secrets.token_hex(12)}"
        now = time.time()
        async with self.engine.begin() as conn:
            await conn.execute(
                t.refresh_families.insert().values(
                    id=family_id,
                    client_id=client_id,
                    username=username,
                    scope=scope,
                    created_at=now,
                    expires_at=now + lifetime,
                )
            )
            if code_hash is not None:
                await conn.execute(
                    update(t.authorization_codes)
                    .where(t.authorization_codes.c.code_hash == code_hash)
                    .values(family_id=family_id)
                )
        return family_id

    async def issue_refresh_token(self, family_id: str, ttl: float) -> str:
        token = secrets.token_urlsafe(32)
        now = time.time()
        async with self.engine.begin() as conn:
            await conn.execute(
                t.refresh_tokens.insert().values(
                    token_hash=hash_credential(token),
                    family_id=family_id,
                    created_at=now,
                    expires_at=now + ttl,
                )
            )
        return token

    async def use_refresh_token(self, token: str, client_id: str) -> RefreshFamilyRecord | None:
        """Spend a refresh token of `client_id`; returns its family if it may be rotated.

        A token used before (or raced) revokes its whole family: whoever holds the newer
        token and whoever replayed the old one both have to sign in again."""
        token_hash = hash_credential(token)
        now = time.time()
        tokens, families = t.refresh_tokens, t.refresh_families
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(tokens, families.c.client_id, families.c.username)
                    .add_columns(families.c.scope, families.c.revoked_at)
                    .add_columns(families.c.expires_at.label("family_expires_at"))
                    .join(families, families.c.id == tokens.c.family_id)
                    .where(tokens.c.token_hash == token_hash)
                )
            ).first()
            if row is None or row.client_id != client_id:
                return None
            if row.revoked_at is not None:
                return None
            spent = await conn.execute(
                update(tokens)
                .where(tokens.c.token_hash == token_hash, tokens.c.used_at.is_(None))
                .values(used_at=now)
            )
            if spent.rowcount != 1:
                await _revoke_family(conn, row.family_id, "reuse", now)
                return None
            if row.expires_at <= now or row.family_expires_at <= now:
                return None
        return RefreshFamilyRecord(
            row.family_id, row.client_id, row.username, row.scope, row.family_expires_at
        )

    async def revoke_refresh_token(self, token: str, client_id: str) -> bool:
        """RFC 7009 for refresh tokens: end the token's family. False: not this client's."""
        token_hash = hash_credential(token)
        tokens, families = t.refresh_tokens, t.refresh_families
        async with self.engine.begin() as conn:
            row = (
                await conn.execute(
                    select(tokens.c.family_id, families.c.client_id)
                    .join(families, families.c.id == tokens.c.family_id)
                    .where(tokens.c.token_hash == token_hash)
                )
            ).first()
            if row is None or row.client_id != client_id:
                return False
            await _revoke_family(conn, row.family_id, "revoked", time.time())
        return True

    async def refresh_family_revoked(self, family_id: str) -> bool:
        rows = await self._select(
            select(t.refresh_families.c.revoked_at).where(t.refresh_families.c.id == family_id)
        )
        return not rows or rows[0].revoked_at is not None

    async def _select(self, statement: Any) -> list[Any]:
        async with self.engine.connect() as conn:
            return list((await conn.execute(statement)).all())


async def _revoke_family(conn: Any, family_id: str, reason: str, now: float) -> None:
    await conn.execute(
        update(t.refresh_families)
        .where(t.refresh_families.c.id == family_id, t.refresh_families.c.revoked_at.is_(None))
        .values(revoked_at=now, revoked_reason=reason)
    )


def _user(row: Any) -> UserRecord:
    return UserRecord(
        username=row.username,
        customer_id=row.customer_id,
        created_at=row.created_at,
        disabled_at=row.disabled_at,
        failed_attempts=row.failed_attempts,
        locked_until=row.locked_until,
        last_sign_in_at=row.last_sign_in_at,
    )
