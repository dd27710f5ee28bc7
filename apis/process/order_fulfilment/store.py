"""The order-fulfilment saga log: one row per Idempotency-Key, in the API's own database.

Each step's outcome is written before the next step starts, so a retried request (or
the start-up sweep after a crash) continues or compensates from where it stopped.
SQLAlchemy Core; SQLite by default, PostgreSQL by URL.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, Float, Integer, MetaData, String, Table, Text, select, update

from apis._shared.db import Database, database_url

API = "order-fulfilment"
STARTED, RESERVED, ORDERED, COMPLETED, FAILED = (
    "started",
    "reserved",
    "ordered",
    "completed",
    "failed",
)
TERMINAL = (COMPLETED, FAILED)

metadata = MetaData()
sagas = Table(
    "fulfilment_sagas",
    metadata,
    Column("key", String(255), primary_key=True),
    Column("request_hash", String(64), nullable=False),
    Column("request", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempt", Integer, nullable=False, default=0),
    Column("priced_lines", Text, nullable=True),
    Column("reservation_id", String(64), nullable=True),
    Column("order_id", String(64), nullable=True),
    Column("response_status", Integer, nullable=True),
    Column("response_body", Text, nullable=True),
    Column("updated_at", Float, nullable=False),
)


@dataclass
class Saga:
    key: str
    request_hash: str
    request: dict[str, Any]
    state: str = STARTED
    attempt: int = 0
    priced_lines: list[dict[str, Any]] | None = None
    reservation_id: str | None = None
    order_id: str | None = None
    response_status: int | None = None
    response_body: dict[str, Any] | None = field(default=None)


def request_hash(body: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


class SagaStore:
    """The saga rows in the API's own database (`TIERGATE_ORDER_FULFILMENT_DB_URL`)."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url
        self.db: Database | None = None

    async def open(self) -> None:
        self.db = Database(self.url or database_url(API), metadata)
        await self.db.create_schema()

    async def close(self) -> None:
        if self.db is not None:
            await self.db.dispose()

    def _db(self) -> Database:
        assert self.db is not None, "SagaStore.open() was not called"
        return self.db

    async def get(self, key: str) -> Saga | None:
        async with self._db().read() as conn:
            row = (await conn.execute(select(sagas).where(sagas.c.key == key))).mappings().first()
        return _to_saga(row) if row else None

    async def by_order(self, order_id: str) -> Saga | None:
        async with self._db().read() as conn:
            row = (
                (await conn.execute(select(sagas).where(sagas.c.order_id == order_id)))
                .mappings()
                .first()
            )
        return _to_saga(row) if row else None

    async def create(self, key: str, body: dict[str, Any]) -> Saga:
        saga = Saga(key, request_hash(body), body)
        async with self._db().write() as conn:
            await conn.execute(
                sagas.insert().values(
                    key=key,
                    request_hash=saga.request_hash,
                    request=json.dumps(body),
                    state=STARTED,
                    attempt=0,
                    updated_at=time.time(),
                )
            )
        return saga

    async def save(self, saga: Saga) -> None:
        values = {
            "state": saga.state,
            "attempt": saga.attempt,
            "priced_lines": json.dumps(saga.priced_lines) if saga.priced_lines else None,
            "reservation_id": saga.reservation_id,
            "order_id": saga.order_id,
            "response_status": saga.response_status,
            "response_body": json.dumps(saga.response_body) if saga.response_body else None,
            "updated_at": time.time(),
        }
        async with self._db().write() as conn:
            await conn.execute(update(sagas).where(sagas.c.key == saga.key).values(**values))

    async def stale(self, older_than: float) -> list[Saga]:
        """Unfinished sagas untouched for `older_than` seconds (their request died)."""
        cutoff = time.time() - older_than
        async with self._db().read() as conn:
            rows = (
                (
                    await conn.execute(
                        select(sagas).where(
                            sagas.c.state.not_in(TERMINAL), sagas.c.updated_at < cutoff
                        )
                    )
                )
                .mappings()
                .all()
            )
        return [_to_saga(row) for row in rows]


def _to_saga(row: Any) -> Saga:
    return Saga(
        key=row["key"],
        request_hash=row["request_hash"],
        request=json.loads(row["request"]),
        state=row["state"],
        attempt=row["attempt"],
        priced_lines=json.loads(row["priced_lines"]) if row["priced_lines"] else None,
        reservation_id=row["reservation_id"],
        order_id=row["order_id"],
        response_status=row["response_status"],
        response_body=json.loads(row["response_body"]) if row["response_body"] else None,
    )
