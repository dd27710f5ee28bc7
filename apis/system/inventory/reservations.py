"""Stock reservations: all lines held or none, never negative stock, release returns once.

Every stock change is one conditional UPDATE (`units_free >= qty`), so concurrent
requests on SQLite or PostgreSQL can never oversell; SKUs are locked in sorted order.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apis._shared.app import db_of
from apis._shared.idempotency import Idempotency, read_key
from apis._shared.problems import Problem
from apis._shared.validation import path_id, read_body
from apis._shared.values import RESERVATION_ID_PATTERN, now, timestamp
from apis.system.inventory.models import (
    Reservation,
    ReservationCreate,
    ReservationLine,
)
from apis.system.inventory.store import idempotency, products, reservation_lines, reservations

HOLD_FOR = timedelta(minutes=15)
NOT_FOUND = "There is no reservation with id '{value}'."
UNKNOWN_SKU = "There is no product with SKU '{sku}'; nothing was reserved."
SHORT = (
    "Only {available} of the {wanted} units of {sku} requested are available; nothing was reserved."
)
CANNOT = "Reservation {id} is {status} and cannot be {action}."
EXPIRED = "Reservation {id} expired at {expires_at}; its stock was released."
_ID = re.compile(RESERVATION_ID_PATTERN)
_OUTCOMES = {"release": ("released", "committed"), "commit": ("committed", "released")}


async def _load(conn: AsyncConnection, reservation_id: str) -> Any:
    return (
        await conn.execute(
            select(reservations).where(reservations.c.reservation_ref == reservation_id)
        )
    ).first()


async def _payload(conn: AsyncConnection, row: Any) -> dict[str, Any]:
    lines = (
        await conn.execute(
            select(reservation_lines)
            .where(reservation_lines.c.reservation_pk == row.pk)
            .order_by(reservation_lines.c.pk)
        )
    ).all()
    return Reservation(
        id=row.reservation_ref,
        status=row.state,
        lines=[ReservationLine(sku=line.sku_code, quantity=line.units) for line in lines],
        expires_at=timestamp(row.expires),
        created_at=timestamp(row.created),
    ).model_dump()


async def _hold(conn: AsyncConnection, sku: str, wanted: int) -> None:
    free = products.c.units_free
    result = await conn.execute(
        products.update()
        .where(products.c.sku_code == sku, free >= wanted)
        .values(units_free=free - wanted)
    )
    if result.rowcount == 1:
        return
    available = (await conn.execute(select(free).where(products.c.sku_code == sku))).scalar()
    if available is None:
        raise Problem(409, UNKNOWN_SKU.format(sku=sku))
    raise Problem(409, SHORT.format(available=available, wanted=wanted, sku=sku))


async def _transition(conn: AsyncConnection, row: Any, to: str) -> bool:
    """Move a held reservation to `to`; False if another request moved it first."""
    result = await conn.execute(
        reservations.update()
        .where(reservations.c.pk == row.pk, reservations.c.state == "held")
        .values(state=to)
    )
    if result.rowcount != 1:
        return False
    if to == "released":
        lines = (
            await conn.execute(
                select(reservation_lines.c.sku_code, reservation_lines.c.units)
                .where(reservation_lines.c.reservation_pk == row.pk)
                .order_by(reservation_lines.c.sku_code)
            )
        ).all()
        for line in lines:
            await conn.execute(
                products.update()
                .where(products.c.sku_code == line.sku_code)
                .values(units_free=products.c.units_free + line.units)
            )
    return True


def _expired(row: Any) -> bool:
    expires = row.expires if row.expires.tzinfo else row.expires.replace(tzinfo=now().tzinfo)
    return row.state == "held" and expires <= now()


async def create_reservation(request: Request) -> Response:
    key = read_key(request, required=True)
    body, raw = await read_body(request, ReservationCreate)

    async def create(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        for sku, wanted in body.totals():
            await _hold(conn, sku, wanted)
        created = now()
        reference = "res_" + secrets.token_hex(6)
        pk = (
            await conn.execute(
                reservations.insert()
                .values(
                    reservation_ref=reference,
                    state="held",
                    created=created,
                    expires=created + HOLD_FOR,
                )
                .returning(reservations.c.pk)
            )
        ).scalar_one()
        await conn.execute(
            reservation_lines.insert(),
            [
                {"reservation_pk": pk, "sku_code": line.sku, "units": line.quantity}
                for line in body.lines
            ],
        )
        return 201, await _payload(conn, await _load(conn, reference))

    return await Idempotency(db_of(request), idempotency).run(request, key, raw, create)


async def _expire_if_due(request: Request, reservation_id: str) -> bool:
    """Release a held reservation past its expiry, in its own transaction.

    True when this call released it. Runs before the caller's own transaction, so the
    stock is back even when the caller then answers with a problem.
    """
    db = db_of(request)
    async with db.read() as conn:
        row = await _load(conn, reservation_id)
    if row is None or not _expired(row):
        return False
    async with db.write() as conn:
        return await _transition(conn, row, "released")


async def _act(request: Request, action: str) -> Response:
    """Release or commit; both are idempotent and answer the reservation."""
    reservation_id = path_id(request, "reservation_id", _ID)
    key = read_key(request, required=False)
    target, opposite = _OUTCOMES[action]
    expired = await _expire_if_due(request, reservation_id)

    async def act(conn: AsyncConnection) -> tuple[int, dict[str, Any]]:
        row = await _load(conn, reservation_id)
        if row is None:
            raise Problem(404, NOT_FOUND.format(value=reservation_id))
        if expired and action == "commit":
            expires_at = timestamp(row.expires)
            raise Problem(409, EXPIRED.format(id=row.reservation_ref, expires_at=expires_at))
        if not await _transition(conn, row, target):
            row = await _load(conn, reservation_id)
        if row.state == opposite:
            detail = CANNOT.format(id=row.reservation_ref, status=row.state, action=target)
            raise Problem(409, detail)
        return 200, await _payload(conn, await _load(conn, reservation_id))

    return await Idempotency(db_of(request), idempotency).run(request, key, None, act)


async def release_reservation(request: Request) -> Response:
    return await _act(request, "release")


async def commit_reservation(request: Request) -> Response:
    return await _act(request, "commit")


async def get_reservation(request: Request) -> Response:
    """A held reservation past its expiry is released on read."""
    reservation_id = path_id(request, "reservation_id", _ID)
    await _expire_if_due(request, reservation_id)
    async with db_of(request).read() as conn:
        row = await _load(conn, reservation_id)
        if row is None:
            raise Problem(404, NOT_FOUND.format(value=reservation_id))
        return JSONResponse(await _payload(conn, row))
