"""The warehouse's tables and its deterministic seed catalogue."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

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

SEED = 20260102
SEED_PRODUCTS = 100
CATEGORIES = {
    "tools": ["hammer", "screwdriver set", "cordless drill", "tape measure", "spirit level"],
    "garden": ["hose reel", "pruning shears", "planter", "watering can", "rake"],
    "kitchen": ["chef's knife", "cast iron pan", "kettle", "cutting board", "spice rack"],
    "lighting": ["desk lamp", "pendant light", "floor lamp", "string lights", "wall sconce"],
    "outdoor": ["camping chair", "cool box", "lantern", "hammock", "picnic blanket"],
}
_ADJECTIVES = ["Brass", "Oak", "Compact", "Classic", "Nordic", "Heavy-duty", "Slim", "Solar"]

metadata = MetaData()
products = Table(
    "wh_products",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("sku_code", String(16), nullable=False, unique=True),
    Column("title", String(120), nullable=False),
    Column("category_code", String(16), nullable=False, index=True),
    Column("price_cents", BigInteger, nullable=False),
    Column("units_free", Integer, nullable=False),
)
reservations = Table(
    "wh_reservations",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("reservation_ref", String(40), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
    Column("expires", DateTime(timezone=True), nullable=False),
)
reservation_lines = Table(
    "wh_reservation_lines",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("reservation_pk", ForeignKey("wh_reservations.pk"), nullable=False, index=True),
    Column("sku_code", String(16), nullable=False),
    Column("units", Integer, nullable=False),
)
idempotency = idempotency_table(metadata)


_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Finished reservations, so every reservation operation has a real one to act on
# (committed: release is a 409, commit a 200; released: release is a 200).
SEED_RESERVATIONS = [
    (
        {
            "reservation_ref": f"res_{n:06d}",
            "state": state,
            "created": _AT,
            "expires": _AT + timedelta(minutes=15),
        },
        [{"sku_code": "SKU-0001", "units": n}],
    )
    for n, state in ((1, "committed"), (2, "released"))
]


def seed_rows() -> list[dict]:
    rng = random.Random(SEED)  # noqa: S311 - deterministic seed data, not secrets
    rows = []
    for number in range(1, SEED_PRODUCTS + 1):
        category = rng.choice(sorted(CATEGORIES))
        rows.append(
            {
                "sku_code": f"SKU-{number:04d}",
                "title": f"{rng.choice(_ADJECTIVES)} {rng.choice(CATEGORIES[category])}",
                "category_code": category,
                "price_cents": rng.randint(3, 400) * 100 + rng.choice([0, 50, 90, 99]),
                "units_free": rng.choice([0, 10, 25, 50, 100, 250, 500]),
            }
        )
    return rows


async def seed(db: Database) -> None:
    """Insert the seed catalogue once; safe to run from several processes at once."""
    if await db.is_seeded(products.c.sku_code, f"SKU-{SEED_PRODUCTS:04d}"):
        return
    async with db.write() as conn:
        await db.insert_ignoring_duplicates(conn, products, seed_rows())
        await db.lock(conn, "seed")
        if (await conn.execute(select(reservations.c.pk).limit(1))).first():
            return
        for row, lines in SEED_RESERVATIONS:
            pk = (
                await conn.execute(reservations.insert().values(**row).returning(reservations.c.pk))
            ).scalar_one()
            await conn.execute(
                reservation_lines.insert(), [{**line, "reservation_pk": pk} for line in lines]
            )
