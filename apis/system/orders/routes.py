"""Orders API handlers: rows are mapped to contract models explicitly."""

from __future__ import annotations

import re
import secrets
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
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
from apis._shared.values import ORDER_ID_PATTERN, cents, money, now, timestamp
from apis.system.orders.models import Order, OrderCreate, OrderLine, OrderQuery
from apis.system.orders.store import idempotency, metadata, order_lines, orders, seed

NOT_FOUND = "There is no order with id '{value}'."
NOT_CANCELLABLE = "Order {id} is {status} and can no longer be cancelled."
_ID = re.compile(ORDER_ID_PATTERN)


def to_order(row: Any, lines: Sequence[Any]) -> dict[str, Any]:
    return Order(
        id=row.order_ref,
        customer_id=row.customer_ref,
        status=row.state,
        lines=[
            OrderLine(
                sku=line.sku_code,
                quantity=line.units,
                unit_price=money(line.unit_price_cents),
                line_total=money(line.units * line.unit_price_cents),
            )
            for line in lines
        ],
        total=money(row.total_cents),
        currency=row.currency_code,
        reservation_id=row.reservation_ref,
        created_at=timestamp(row.created),
    ).model_dump()


async def _with_lines(conn: AsyncConnection, rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Orders with their lines, fetched in one query for the whole page."""
    by_order: dict[int, list[Any]] = defaultdict(list)
    if rows:
        query = (
            select(order_lines)
            .where(order_lines.c.order_pk.in_([row.pk for row in rows]))
            .order_by(order_lines.c.order_pk, order_lines.c.line_no)
        )
        for line in (await conn.execute(query)).all():
            by_order[line.order_pk].append(line)
    return [to_order(row, by_order[row.pk]) for row in rows]


async def _load(conn: AsyncConnection, order_id: str) -> dict[str, Any] | None:
    row = (await conn.execute(select(orders).where(orders.c.order_ref == order_id))).first()
    return (await _with_lines(conn, [row]))[0] if row else None


async def list_orders(request: Request) -> Response:
    query = read_query(request, OrderQuery)
    statement = select(orders)
    if query.customer_id:
        statement = statement.where(orders.c.customer_ref == query.customer_id)
    if query.status:
        statement = statement.where(orders.c.state == query.status)
    async with db_of(request).read() as conn:
        rows = (await conn.execute(page_of(statement, orders.c.pk, query))).all()
        shown = rows[: query.limit]
        items = iter(await _with_lines(conn, shown))
    return JSONResponse(page_body(rows, query, lambda _row: next(items), lambda row: row.pk))


async def create_order(request: Request) -> Response:
    key = read_key(request, required=True)
    body, raw = await read_body(request, OrderCreate)

    async def create(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        reference = "ord_" + secrets.token_hex(6)
        pk = (
            await conn.execute(
                orders.insert()
                .values(
                    order_ref=reference,
                    customer_ref=body.customer_id,
                    state="placed",
                    reservation_ref=body.reservation_id,
                    total_cents=sum(line.quantity * cents(line.unit_price) for line in body.lines),
                    currency_code="EUR",
                    created=now(),
                )
                .returning(orders.c.pk)
            )
        ).scalar_one()
        await conn.execute(
            order_lines.insert(),
            [
                {
                    "order_pk": pk,
                    "line_no": number,
                    "sku_code": line.sku,
                    "units": line.quantity,
                    "unit_price_cents": cents(line.unit_price),
                }
                for number, line in enumerate(body.lines, start=1)
            ],
        )
        order = await _load(conn, reference)
        assert order is not None
        return 201, order

    return await Idempotency(db_of(request), idempotency).run(request, key, raw, create)


async def get_order(request: Request) -> Response:
    order_id = path_id(request, "order_id", _ID)
    async with db_of(request).read() as conn:
        order = await _load(conn, order_id)
    if order is None:
        raise Problem(404, NOT_FOUND.format(value=order_id))
    return json_with_etag(request, order)


async def cancel_order(request: Request) -> Response:
    """placed → cancelled; cancelling again answers the cancelled order."""
    order_id = path_id(request, "order_id", _ID)
    key = read_key(request, required=False)

    async def cancel(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        await conn.execute(
            orders.update()
            .where(orders.c.order_ref == order_id, orders.c.state == "placed")
            .values(state="cancelled")
        )
        order = await _load(conn, order_id)
        if order is None:
            raise Problem(404, NOT_FOUND.format(value=order_id))
        if order["status"] != "cancelled":
            raise Problem(409, NOT_CANCELLABLE.format(id=order_id, status=order["status"]))
        return 200, order

    return await Idempotency(db_of(request), idempotency).run(request, key, None, cancel)


ROUTES = [
    resource("/orders", get=list_orders, post=create_order),
    resource("/orders/{order_id}", get=get_order),
    resource("/orders/{order_id}/cancel", post=cancel_order),
]


def create_app(db_url: str | None = None) -> Starlette:
    return create_api("orders", ROUTES, metadata, seed, db_url)
