"""The CRM's tables and its deterministic seed data."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, String, Table

from apis._shared.db import Database
from apis._shared.idempotency import idempotency_table

SEED = 20260101
SEED_CUSTOMERS = 300
CREDIT_LIMIT_CENTS = {"retail": 50_000, "business": 500_000, "vip": 200_000}

metadata = MetaData()
customers = Table(
    "crm_customers",
    metadata,
    Column("pk", Integer, primary_key=True, autoincrement=True),
    Column("customer_ref", String(40), nullable=False, unique=True),
    Column("email_address", String(254), nullable=False),
    Column("email_key", String(254), nullable=False, unique=True),
    Column("full_name", String(120), nullable=False),
    Column("segment_code", String(16), nullable=False, index=True),
    Column("country_code", String(2), nullable=False),
    Column("credit_limit_cents", BigInteger, nullable=False),
    Column("balance_cents", BigInteger, nullable=False),
    Column("created", DateTime(timezone=True), nullable=False),
)
idempotency = idempotency_table(metadata)

_FIRST = [
    "Anna",
    "Ben",
    "Clara",
    "David",
    "Emma",
    "Felix",
    "Greta",
    "Hugo",
    "Ines",
    "Jonas",
    "Katrin",
    "Lukas",
    "Mia",
    "Noah",
    "Olga",
    "Paul",
    "Rosa",
    "Simon",
    "Tara",
    "Vera",
]
_LAST = [
    "Schmidt",
    "Dubois",
    "Jansen",
    "Rossi",
    "Garcia",
    "Novak",
    "Berg",
    "Keller",
    "Laurent",
    "Peeters",
    "Moreau",
    "Weber",
    "Bianchi",
    "Lopez",
    "Fischer",
]
_COUNTRIES = ["DE", "FR", "NL", "BE", "AT", "IT", "ES"]


def seed_rows() -> list[dict]:
    rng = random.Random(SEED)  # noqa: S311 - deterministic seed data, not secrets
    start = datetime(2025, 1, 1, 8, 0, tzinfo=UTC)
    rows = []
    for number in range(1, SEED_CUSTOMERS + 1):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        segment = rng.choices(["retail", "business", "vip"], weights=[70, 20, 10])[0]
        email = f"{first}.{last}.{number}@example.com".lower()
        limit = CREDIT_LIMIT_CENTS[segment]
        start += timedelta(hours=rng.randint(1, 30), minutes=rng.randint(0, 59))
        rows.append(
            {
                "customer_ref": f"cus_{number:04d}",
                "email_address": email,
                "email_key": email,
                "full_name": f"{first} {last}",
                "segment_code": segment,
                "country_code": rng.choice(_COUNTRIES),
                "credit_limit_cents": limit,
                "balance_cents": rng.randint(0, limit),
                "created": start,
            }
        )
    return rows


async def seed(db: Database) -> None:
    """Insert the seed customers once; safe to run from several processes at once."""
    if await db.is_seeded(customers.c.customer_ref, f"cus_{SEED_CUSTOMERS:04d}"):
        return
    async with db.write() as conn:
        await db.insert_ignoring_duplicates(conn, customers, seed_rows())
