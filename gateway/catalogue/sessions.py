"""Server-side catalogue sessions in the registry database (shared by every node).

A browser holds only a random session id in a cookie; the row is keyed by the id's
SHA-256, so a copy of the table opens no session. Two kinds of row:

- `pending`: a sign-in under way; keeps the OAuth `state`, the PKCE code_verifier and
  where to go afterwards. Taken (deleted) by the callback, so it works once.
- `active`: a signed-in user with the CSRF token of the session's forms.

The table belongs to the catalogue and is created beside the registry's own tables.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Float, MetaData, String, Table, delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from gateway.registry.credentials import hash_credential
from gateway.registry.schema import create_tables

PENDING_TTL = 600.0  # seconds a started sign-in may take
MAX_ID_CHARS = 64

metadata = MetaData()
catalogue_sessions = Table(
    "catalogue_sessions",
    metadata,
    Column("id_hash", String(64), primary_key=True),
    Column("kind", String(16), nullable=False),
    Column("username", String(64)),
    Column("csrf", String(64)),
    Column("state", String(128)),
    Column("code_verifier", String(128)),
    Column("next_path", String(512)),
    Column("created_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False, index=True),
)


@dataclass(frozen=True, slots=True)
class PendingSignIn:
    state: str
    code_verifier: str
    next_path: str


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    csrf: str
    expires_at: float


class SessionStore:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    async def start(self) -> None:
        await create_tables(self.engine, metadata)

    async def begin_sign_in(self, state: str, code_verifier: str, next_path: str) -> str:
        """A pending sign-in; returns the id for the cookie."""
        return await self._insert(
            "pending",
            PENDING_TTL,
            state=state,
            code_verifier=code_verifier,
            next_path=next_path,
        )

    async def take_sign_in(self, session_id: str) -> PendingSignIn | None:
        """The pending sign-in of this id, deleted in the same transaction (single use)."""
        row = await self._take(session_id, "pending")
        if row is None:
            return None
        return PendingSignIn(row.state, row.code_verifier, row.next_path)

    async def create(self, username: str, ttl: float) -> str:
        """A new session with a new id (never the pending one: no session fixation)."""
        return await self._insert("active", ttl, username=username, csrf=secrets.token_urlsafe(32))

    async def get(self, session_id: str) -> Session | None:
        if not _plausible(session_id):
            return None
        table = catalogue_sessions
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(
                    select(table).where(
                        table.c.id_hash == hash_credential(session_id),
                        table.c.kind == "active",
                        table.c.expires_at > time.time(),
                    )
                )
            ).first()
        return None if row is None else Session(row.username, row.csrf, row.expires_at)

    async def delete(self, session_id: str) -> None:
        if not _plausible(session_id):
            return
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(catalogue_sessions).where(
                    catalogue_sessions.c.id_hash == hash_credential(session_id)
                )
            )

    async def delete_user(self, username: str) -> None:
        """End every session of `username` (e.g. when the user is no longer allowed in)."""
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(catalogue_sessions).where(catalogue_sessions.c.username == username)
            )

    # -- internals -------------------------------------------------------------------

    async def _insert(self, kind: str, ttl: float, **values: str) -> str:
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        async with self.engine.begin() as conn:
            await conn.execute(
                delete(catalogue_sessions).where(catalogue_sessions.c.expires_at <= now)
            )
            await conn.execute(
                catalogue_sessions.insert().values(
                    id_hash=hash_credential(session_id),
                    kind=kind,
                    created_at=now,
                    expires_at=now + ttl,
                    **values,
                )
            )
        return session_id

    async def _take(self, session_id: str, kind: str) -> Any:
        if not _plausible(session_id):
            return None
        table = catalogue_sessions
        where = (
            table.c.id_hash == hash_credential(session_id),
            table.c.kind == kind,
            table.c.expires_at > time.time(),
        )
        async with self.engine.begin() as conn:
            row = (await conn.execute(select(table).where(*where))).first()
            if row is None:
                return None
            taken = await conn.execute(delete(table).where(*where))
            return row if taken.rowcount == 1 else None


def _plausible(session_id: str) -> bool:
    return 0 < len(session_id) <= MAX_ID_CHARS and session_id.isascii()
