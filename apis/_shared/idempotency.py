"""Idempotency-Key for POSTs, stored in the API's own database.

The same key with the same body replays the stored response (status and body, with
`Idempotency-Replayed: true`) and never creates twice; the same key with a different
body is a 422 problem. The key is claimed, the create runs and the response is
recorded in one transaction; a concurrent duplicate waits on the table's unique
constraint, fails on it and replays the winner. Only successful responses are
stored: a failed attempt can be retried with the same key. Records are kept for
`KEEP_FOR`; after that a key may be used again (each API purges them at start-up).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import Response

from apis._shared.db import Database
from apis._shared.etag import json_bytes
from apis._shared.identity import identity_from
from apis._shared.problems import Problem, parameter_error

HEADER = "Idempotency-Key"
KEEP_FOR = timedelta(hours=24)
IDEMPOTENCY_TABLE = "idempotency_keys"
KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,255}")
KEY_MISSING = "This request needs an Idempotency-Key header (for example a fresh UUID)."
KEY_INVALID = "The Idempotency-Key header must be 1 to 255 visible ASCII characters."
KEY_REUSED = (
    "The Idempotency-Key '{key}' was already used with a different request body; "
    "use a new key for a new request."
)

Create = Callable[[AsyncConnection], Awaitable[tuple[int, Any]]]


def idempotency_table(metadata: MetaData) -> Table:
    return Table(
        IDEMPOTENCY_TABLE,
        metadata,
        Column("pk", Integer, primary_key=True, autoincrement=True),
        Column("scope", String(400), nullable=False),
        Column("key", String(255), nullable=False),
        Column("fingerprint", String(64), nullable=False),
        Column("status", Integer, nullable=False),
        Column("body", Text, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False, index=True),
        UniqueConstraint("scope", "key", name="uq_idempotency_scope_key"),
    )


def read_key(request: Request, *, required: bool) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        if required:
            raise Problem(400, KEY_MISSING, errors=[parameter_error("header", HEADER, KEY_MISSING)])
        return None
    if not KEY_PATTERN.fullmatch(key):
        raise Problem(400, KEY_INVALID, errors=[parameter_error("header", HEADER, KEY_INVALID)])
    return key


def _cutoff() -> datetime:
    return datetime.now(UTC) - KEEP_FOR


async def purge_expired(db: Database, table: Table) -> None:
    """Drop records older than KEEP_FOR."""
    async with db.write() as conn:
        await conn.execute(table.delete().where(table.c.created_at < _cutoff()))


def _canonical(payload: Any) -> bytes:
    return json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()


def _response(status: int, body: bytes, replayed: bool) -> Response:
    headers = {"Idempotency-Replayed": "true"} if replayed else {}
    return Response(body, status, headers=headers, media_type="application/json")


class Idempotency:
    def __init__(self, db: Database, table: Table) -> None:
        self.db = db
        self.table = table

    async def run(
        self, request: Request, key: str | None, payload: Any, create: Create
    ) -> Response:
        """Run `create` in a write transaction at most once per key; answer its response."""
        if key is None:
            async with self.db.write() as conn:
                status, result = await create(conn)
            return _response(status, json_bytes(result), replayed=False)
        scope = f"{identity_from(request).key} {request.method} {request.url.path}"[:400]
        fingerprint = hashlib.sha256(_canonical(payload)).hexdigest()
        stored = await self._replay(scope, key, fingerprint)
        if stored is not None:
            return stored
        try:
            async with self.db.write() as conn:
                await conn.execute(
                    self.table.delete().where(
                        self.table.c.scope == scope,
                        self.table.c.key == key,
                        self.table.c.created_at < _cutoff(),
                    )
                )
                # Claim the key first: a concurrent duplicate waits here and then fails on
                # the unique constraint, before it can run (or trip over) the create.
                claim = (
                    await conn.execute(
                        self.table.insert()
                        .values(
                            scope=scope,
                            key=key,
                            fingerprint=fingerprint,
                            status=0,
                            body="",
                            created_at=datetime.now(UTC),
                        )
                        .returning(self.table.c.pk)
                    )
                ).scalar_one()
                status, result = await create(conn)
                body = json_bytes(result)
                await conn.execute(
                    self.table.update()
                    .where(self.table.c.pk == claim)
                    .values(status=status, body=body.decode())
                )
        except IntegrityError:
            stored = await self._replay(scope, key, fingerprint)
            if stored is None:
                raise
            return stored
        return _response(status, body, replayed=False)

    async def _replay(self, scope: str, key: str, fingerprint: str) -> Response | None:
        table = self.table
        query = select(table.c.fingerprint, table.c.status, table.c.body).where(
            table.c.scope == scope, table.c.key == key, table.c.created_at >= _cutoff()
        )
        async with self.db.read() as conn:
            row = (await conn.execute(query)).first()
        if row is None:
            return None
        if row.fingerprint != fingerprint:
            raise Problem(422, KEY_REUSED.format(key=key))
        return _response(row.status, row.body.encode(), replayed=True)
