"""The ERP's tables and its deterministic seed orders."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    select,
)

from apis._shared.db import Database
from apis._shared.idempotency import idempotency_table

SEED = 20260103
SEED_ORDERS = 400
SEED_CUSTOMERS = 300
SEED_PRODUCTS = 100

metadata = MetaData()
orders = Table(
    "erp_orders",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("order_ref", String(40), nullable=False, unique=True),
    Column("customer_ref", String(40), nullable=False, index=True),
    Column("state", String(16), nullable=False, index=True),
    Column("reservation_ref", String(40), nullable=True),
    Column("total_cents", BigInteger, nullable=False),
    Column("currency_code", String(3), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)
order_lines = Table(
    "erp_order_lines",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("order_pk", ForeignKey("erp_orders.pk"), nullable=False, index=True),
    Column("line_no", Integer, nullable=False),
    Column("sku_code", String(16), nullable=False),
    Column("units", Integer, nullable=False),
    Column("unit_price_cents", BigInteger, nullable=False),
)
idempotency = idempotency_table(metadata)


def seed_orders() -> list[tuple[dict, list[dict]]]:
    """(order row, line rows) pairs; line rows lack `order_pk` until inserted."""
    rng = random.Random(SEED)  # noqa: S311 - deterministic seed data, not secrets
    created = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    result = []
    for number in range(1, SEED_ORDERS + 1):
        created += timedelta(hours=rng.randint(1, 20), minutes=rng.randint(0, 59))
        lines: list[dict[str, Any]] = [
            {
                "line_no": line_no,
                "sku_code": f"SKU-{rng.randint(1, SEED_PRODUCTS):04d}",
                "units": rng.randint(1, 5),
                "unit_price_cents": rng.randint(3, 400) * 100 + rng.choice([0, 50, 90, 99]),
            }
            for line_no in range(1, rng.randint(1, 4) + 1)
        ]
        state = rng.choices(
            ["delivered", "shipped", "placed", "cancelled"], weights=[50, 20, 20, 10]
        )[0]
        result.append(
            (
                {
                    "order_ref": f"ord_{number:06d}",
                    "customer_ref": f"cus_{rng.randint(1, SEED_CUSTOMERS):04d}",
                    "state": state,
                    "reservation_ref": None,
                    "total_cents": sum(ln["units"] * ln["unit_price_cents"] for ln in lines),
                    "currency_code": "EUR",
                    "created": created,
                },
                lines,
            )
        )
    return result


async def seed(db: Database) -> None:
    """Insert the seed orders once, in one transaction (several processes may race)."""
    last = f"ord_{SEED_ORDERS:06d}"
    if await db.is_seeded(orders.c.order_ref, last):
        return
    async with db.write() as conn:
        await db.lock(conn, "seed")
        if (await conn.execute(select(orders.c.pk).where(orders.c.order_ref == last))).first():
            return  # another process seeded while this one waited for the lock
        pairs = seed_orders()
        await db.insert_ignoring_duplicates(conn, orders, [order for order, _ in pairs])
        pks = dict((await conn.execute(select(orders.c.order_ref, orders.c.pk))).all())
        await conn.execute(
            order_lines.insert(),
            [
                {**line, "order_pk": pks[order["order_ref"]]}
                for order, lines in pairs
                for line in lines
            ],
        )
