"""Customers API handlers: rows are mapped to contract models explicitly."""

from __future__ import annotations

import re
import secrets
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apis._shared.app import create_api, db_of, resource
from apis._shared.etag import json_with_etag
from apis._shared.idempotency import Idempotency, read_key
from apis._shared.pagination import page_body, page_of
from apis._shared.problems import Problem
from apis._shared.validation import path_id, read_body, read_query
from apis._shared.values import CUSTOMER_ID_PATTERN, money, now, timestamp
from apis.system.customers.models import (
    Balance,
    Customer,
    CustomerCreate,
    CustomerQuery,
)
from apis.system.customers.store import CREDIT_LIMIT_CENTS, customers, idempotency, metadata, seed

NOT_FOUND = "There is no customer with id '{value}'."
EMAIL_TAKEN = "A customer with email '{email}' already exists."
_ID = re.compile(CUSTOMER_ID_PATTERN)


def to_customer(row: Any) -> dict[str, Any]:
    return Customer(
        id=row.customer_ref,
        email=row.email_address,
        name=row.full_name,
        segment=row.segment_code,
        country=row.country_code,
        created_at=timestamp(row.created),
    ).model_dump()


async def list_customers(request: Request) -> Response:
    query = read_query(request, CustomerQuery)
    statement = select(customers)
    if query.email:
        statement = statement.where(customers.c.email_key == query.email.lower())
    if query.segment:
        statement = statement.where(customers.c.segment_code == query.segment)
    if query.q:
        needle = query.q.lower()
        statement = statement.where(
            or_(
                func.lower(customers.c.full_name).contains(needle, autoescape=True),
                customers.c.email_key.contains(needle, autoescape=True),
            )
        )
    async with db_of(request).read() as conn:
        rows = (await conn.execute(page_of(statement, customers.c.pk, query))).all()
    return JSONResponse(page_body(rows, query, to_customer, lambda row: row.pk))


async def create_customer(request: Request) -> Response:
    key = read_key(request, required=True)
    body, raw = await read_body(request, CustomerCreate)

    async def create(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        values = {
            "customer_ref": "cus_" + secrets.token_hex(5),
            "email_address": body.email,
            "email_key": body.email.lower(),
            "full_name": body.name,
            "segment_code": body.segment,
            "country_code": body.country,
            "credit_limit_cents": CREDIT_LIMIT_CENTS[body.segment],
            "balance_cents": 0,
            "created": now(),
        }
        try:
            async with conn.begin_nested():
                await conn.execute(customers.insert().values(**values))
        except IntegrityError:
            raise Problem(409, EMAIL_TAKEN.format(email=body.email)) from None
        row = (
            await conn.execute(
                select(customers).where(customers.c.customer_ref == values["customer_ref"])
            )
        ).one()
        return 201, to_customer(row)

    return await Idempotency(db_of(request), idempotency).run(request, key, raw, create)


async def _customer_row(request: Request) -> Any:
    customer_id = path_id(request, "customer_id", _ID)
    async with db_of(request).read() as conn:
        row = (
            await conn.execute(select(customers).where(customers.c.customer_ref == customer_id))
        ).first()
    if row is None:
        raise Problem(404, NOT_FOUND.format(value=customer_id))
    return row


async def get_customer(request: Request) -> Response:
    return json_with_etag(request, to_customer(await _customer_row(request)))


async def get_balance(request: Request) -> Response:
    row = await _customer_row(request)
    balance = Balance(
        customer_id=row.customer_ref,
        credit_limit=money(row.credit_limit_cents),
        balance=money(row.balance_cents),
        currency="EUR",
    )
    return JSONResponse(balance.model_dump())


ROUTES = [
    resource("/customers", get=list_customers, post=create_customer),
    resource("/customers/{customer_id}", get=get_customer),
    resource("/customers/{customer_id}/balance", get=get_balance),
]


def create_app(db_url: str | None = None) -> Starlette:
    return create_api("customers", ROUTES, metadata, seed, db_url)
