"""Inventory API: the product catalogue and the reservation routes."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apis._shared.app import create_api, db_of, resource
from apis._shared.etag import json_with_etag
from apis._shared.pagination import page_body, page_of
from apis._shared.problems import Problem
from apis._shared.validation import path_id, read_query
from apis._shared.values import SKU_PATTERN, money
from apis.system.inventory.models import Product, ProductQuery
from apis.system.inventory.reservations import (
    commit_reservation,
    create_reservation,
    get_reservation,
    release_reservation,
)
from apis.system.inventory.store import metadata, products, seed

NOT_FOUND = "There is no product with SKU '{value}'."
_SKU = re.compile(SKU_PATTERN)


def to_product(row: Any) -> dict[str, Any]:
    return Product(
        sku=row.sku_code,
        name=row.title,
        category=row.category_code,
        price=money(row.price_cents),
        available=row.units_free,
    ).model_dump()


async def list_products(request: Request) -> Response:
    query = read_query(request, ProductQuery)
    statement = select(products)
    if query.category:
        statement = statement.where(products.c.category_code == query.category)
    if query.q:
        statement = statement.where(
            func.lower(products.c.title).contains(query.q.lower(), autoescape=True)
        )
    async with db_of(request).read() as conn:
        rows = (await conn.execute(page_of(statement, products.c.pk, query))).all()
    return JSONResponse(page_body(rows, query, to_product, lambda row: row.pk))


async def get_product(request: Request) -> Response:
    sku = path_id(request, "sku", _SKU)
    async with db_of(request).read() as conn:
        row = (await conn.execute(select(products).where(products.c.sku_code == sku))).first()
    if row is None:
        raise Problem(404, NOT_FOUND.format(value=sku))
    return json_with_etag(request, to_product(row))


ROUTES = [
    resource("/products", get=list_products),
    resource("/products/{sku}", get=get_product),
    resource("/reservations", post=create_reservation),
    resource("/reservations/{reservation_id}", get=get_reservation),
    resource("/reservations/{reservation_id}/release", post=release_reservation),
    resource("/reservations/{reservation_id}/commit", post=commit_reservation),
]


def create_app(db_url: str | None = None) -> Starlette:
    return create_api("inventory", ROUTES, metadata, seed, db_url)
