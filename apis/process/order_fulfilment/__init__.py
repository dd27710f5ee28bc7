"""order-fulfilment (process): browse stock and place orders as a saga.

POST /orders (Idempotency-Key required):
  price the lines (inventory) → reserve stock (inventory) → create the order with the
  reservation (orders) → commit the reservation (inventory).
  - a line names an unknown product: 404, nothing is held;
  - reserve refused (409, not enough stock): 409, nothing is held;
  - create-order refused (4xx): the reservation is released, 422/409 answered and stored;
  - create-order unreachable: the reservation is released and 503 says to retry with
    the same key (the next attempt reserves afresh);
  - create-order unanswered (timeout): the order may exist, so the stock stays held and
    503 says to retry with the same key, which sends the same order again (replayed);
  - commit unreachable: the order exists; 202 with `fulfilment: pending`; retrying
    with the same key completes it (so does the start-up sweep).
Every call below carries its own Idempotency-Key derived from the client's, so a
retried request never reserves or orders twice; a finished saga replays its answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from apis._shared.composition import (
    Problem,
    caller_of,
    create_tier_app,
    derived_key,
    idempotency_key,
    parse_params,
)
from apis._shared.pagination import CURSOR_PATTERN
from apis._shared.problems import problem_body
from apis._shared.service_client import (
    ServiceClient,
    ServiceConflict,
    ServiceError,
    ServiceNotFound,
    ServiceRejected,
    ServiceTimeout,
    ServiceUnavailable,
    service_client,
)
from apis._shared.validation import JsonInt, QueryInt, read_body
from apis._shared.values import CUSTOMER_ID_PATTERN
from apis.process.order_fulfilment.store import (
    COMPLETED,
    FAILED,
    ORDERED,
    RESERVED,
    STARTED,
    Saga,
    SagaStore,
    request_hash,
)

API = "order-fulfilment"
INVENTORY = "/system/inventory/v1"
ORDERS = "/system/orders/v1"
SKU = r"^SKU-[0-9]{4}$"
KEY_REUSED = "This Idempotency-Key was used with a different request body."
NO_PRODUCT = "There is no product with SKU '{sku}'."
NO_ORDER = "There is no order with id '{id}'."
UNKNOWN_SKU = "The order names unknown products: {skus}."
NOT_ENOUGH = "Not enough stock to reserve the order: {reason}"
ORDER_REFUSED = "The order was refused: {reason} The stock reserved for it was released."
# The 503 details name no system behind this API (the log does): the client can act on
# "retry with the same key", not on which system failed.
RETRY = (
    "A service this API depends on is unavailable; nothing is held. Retry with the "
    "same Idempotency-Key."
)
IN_DOUBT = (
    "A service this API depends on did not answer in time; the order may be in progress. "
    "Retry with the same Idempotency-Key to complete it."
)
STALE_AFTER = 60.0
SWEEP_DELAY = 2.0
log = logging.getLogger("tiergate.order_fulfilment")


class ProductQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")
    limit: QueryInt = Field(20, ge=1, le=100)
    cursor: str | None = Field(None, pattern=CURSOR_PATTERN)
    category: str | None = Field(None, pattern=r"^(tools|garden|kitchen|lighting|outdoor)$")
    q: str | None = Field(None, min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")


class SkuParam(BaseModel):
    sku: str = Field(pattern=SKU)


class OrderIdParam(BaseModel):
    order_id: str = Field(pattern=r"^ord_[0-9a-z]{6,32}$")


class Line(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    sku: str = Field(pattern=SKU)
    quantity: JsonInt = Field(ge=1, le=999)


class PlaceOrder(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    customer_id: str = Field(pattern=CUSTOMER_ID_PATTERN)
    lines: list[Line] = Field(min_length=1, max_length=50)


# -- mapping at the tier boundary ----------------------------------------------------


def map_product(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "sku": p["sku"],
        "name": p["name"],
        "category": p["category"],
        "unit_price": p["price"],
        "currency": p["currency"],
        "available_quantity": p["available"],
        "in_stock": p["available"] > 0,
    }


def map_order(o: dict[str, Any], fulfilment: str = "confirmed") -> dict[str, Any]:
    return {
        "order_id": o["id"],
        "customer_id": o["customer_id"],
        "status": o["status"],
        "lines": [
            {
                "sku": li["sku"],
                "quantity": li["quantity"],
                "unit_price": li["unit_price"],
                "line_total": li["line_total"],
            }
            for li in o["lines"]
        ],
        "total": o["total"],
        "currency": o["currency"],
        "placed_at": o["created_at"],
        "fulfilment": fulfilment,
    }


# -- browse ------------------------------------------------------------------------------


async def list_products(request: Request) -> JSONResponse:
    query = parse_params(ProductQuery, request)
    page = await service_client(request.scope).get_json(
        f"{INVENTORY}/products",
        service="inventory",
        incoming=request.headers,
        params=query.model_dump(),
    )
    return JSONResponse(
        {"items": [map_product(p) for p in page["items"]], "next_cursor": page["next_cursor"]}
    )


async def get_product(request: Request) -> JSONResponse:
    sku = parse_params(SkuParam, request).sku
    try:
        product = await service_client(request.scope).get_json(
            f"{INVENTORY}/products/{sku}", service="inventory", incoming=request.headers
        )
    except ServiceNotFound:
        raise Problem(404, NO_PRODUCT.format(sku=sku)) from None
    return JSONResponse(map_product(product))


async def get_order(request: Request) -> JSONResponse:
    order_id = parse_params(OrderIdParam, request).order_id
    try:
        order = await service_client(request.scope).get_json(
            f"{ORDERS}/orders/{order_id}", service="orders", incoming=request.headers
        )
    except ServiceNotFound:
        raise Problem(404, NO_ORDER.format(id=order_id)) from None
    saga = await request.app.state.store.by_order(order_id)
    pending = saga is not None and saga.state == ORDERED
    return JSONResponse(map_order(order, "pending" if pending else "confirmed"))


# -- the saga ----------------------------------------------------------------------------


class Fulfilment:
    """Runs one saga forward from its stored state; returns (status, body)."""

    def __init__(self, store: SagaStore, client: ServiceClient, incoming: Any = None) -> None:
        self.store = store
        self.client = client
        self.incoming = incoming

    async def _call(self, path: str, service: str, key: str, json: Any = None) -> Any:
        return await self.client.post_json(
            path,
            service=service,
            incoming=self.incoming,
            json=json,
            headers={"Idempotency-Key": key},
        )

    async def _finish(
        self, saga: Saga, state: str, status: int, body: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        saga.state, saga.response_status, saga.response_body = state, status, body
        await self.store.save(saga)
        return status, body

    async def _fail(self, saga: Saga, status: int, detail: str) -> tuple[int, dict[str, Any]]:
        body = problem_body(status, detail)
        return await self._finish(saga, FAILED, status, body)

    async def price(self, saga: Saga) -> tuple[int, dict[str, Any]] | None:
        lines = saga.request["lines"]
        results = await asyncio.gather(
            *(
                self.client.get_json(
                    f"{INVENTORY}/products/{line['sku']}",
                    service="inventory",
                    incoming=self.incoming,
                )
                for line in lines
            ),
            return_exceptions=True,
        )
        unknown = [
            line["sku"]
            for line, r in zip(lines, results, strict=True)
            if isinstance(r, ServiceNotFound)
        ]
        if unknown:
            # like an unknown customer: what the order refers to does not exist
            return await self._fail(saga, 404, UNKNOWN_SKU.format(skus=", ".join(unknown)))
        products: list[dict[str, Any]] = []
        for result in results:
            if isinstance(result, BaseException):
                raise result
            products.append(result)
        saga.priced_lines = [
            {"sku": line["sku"], "quantity": line["quantity"], "unit_price": p["price"]}
            for line, p in zip(lines, products, strict=True)
        ]
        await self.store.save(saga)
        return None

    async def reserve(self, saga: Saga) -> tuple[int, dict[str, Any]] | None:
        lines = [{"sku": li["sku"], "quantity": li["quantity"]} for li in saga.request["lines"]]
        try:
            reservation = await self._call(
                f"{INVENTORY}/reservations",
                "inventory",
                derived_key("reserve", saga.key, str(saga.attempt)),
                {"lines": lines},
            )
        except ServiceConflict as exc:
            return await self._fail(saga, 409, NOT_ENOUGH.format(reason=exc.reason))
        except ServiceRejected as exc:
            return await self._fail(saga, 422, exc.reason)
        saga.reservation_id, saga.state = reservation["id"], RESERVED
        await self.store.save(saga)
        return None

    async def release(self, saga: Saga) -> None:
        await self._call(
            f"{INVENTORY}/reservations/{saga.reservation_id}/release",
            "inventory",
            derived_key("release", saga.key, str(saga.attempt)),
        )

    async def create_order(self, saga: Saga) -> tuple[int, dict[str, Any]] | None:
        body = {
            "customer_id": saga.request["customer_id"],
            "reservation_id": saga.reservation_id,
            "lines": saga.priced_lines,
        }
        try:
            order = await self._call(
                f"{ORDERS}/orders",
                "orders",
                derived_key("order", saga.key, str(saga.attempt)),
                body,
            )
        except ServiceRejected as exc:
            await self.release(saga)  # if this fails the saga stays RESERVED: retry/sweep
            status = exc.status if exc.status in (404, 409) else 422
            return await self._fail(saga, status, ORDER_REFUSED.format(reason=exc.reason))
        except ServiceTimeout:
            # No answer: the order may exist. Keep the stock and the state; a retry
            # (or the sweep) sends the same order again, which the orders API replays.
            raise
        except ServiceUnavailable:  # refused or failed: no order was made
            await self.release(saga)
            saga.state, saga.reservation_id = STARTED, None
            saga.attempt += 1  # the next try reserves afresh
            await self.store.save(saga)
            raise
        saga.order_id, saga.state = order["id"], ORDERED
        saga.response_body = map_order(order, "pending")
        await self.store.save(saga)
        return None

    async def commit(self, saga: Saga) -> tuple[int, dict[str, Any]]:
        try:
            await self._call(
                f"{INVENTORY}/reservations/{saga.reservation_id}/commit",
                "inventory",
                derived_key("commit", saga.key),
            )
        except ServiceError as exc:
            log.warning(
                "order %s placed but its stock is not committed yet: %s", saga.order_id, exc
            )
            return 202, {**(saga.response_body or {}), "fulfilment": "pending"}
        body = {**(saga.response_body or {}), "fulfilment": "confirmed"}
        return await self._finish(saga, COMPLETED, 201, body)

    async def run(self, saga: Saga) -> tuple[int, dict[str, Any]]:
        if saga.state == STARTED:
            if saga.priced_lines is None and (done := await self.price(saga)):
                return done
            if done := await self.reserve(saga):
                return done
        if saga.state == RESERVED and (done := await self.create_order(saga)):
            return done
        return await self.commit(saga)

    async def compensate(self, saga: Saga) -> None:
        """Start-up sweep for a saga whose request died: finish it forward from where it
        stopped (the same keys replay what was done); a refused order releases its stock."""
        if saga.state == RESERVED and await self.create_order(saga):
            return
        if saga.state == ORDERED:
            await self.commit(saga)


_locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


async def place_order(request: Request) -> JSONResponse:
    key = derived_key("saga", caller_of(request), idempotency_key(request))  # per caller
    order = (await read_body(request, PlaceOrder))[0]
    body = order.model_dump()
    store: SagaStore = request.app.state.store
    lock = _locks.setdefault(key, asyncio.Lock())
    async with lock:
        saga = await store.get(key)
        if saga is None:
            try:
                saga = await store.create(key, body)
            except IntegrityError:  # another process won the race
                saga = await store.get(key)
                assert saga is not None
        if saga.request_hash != request_hash(body):
            raise Problem(422, KEY_REUSED)
        if saga.state in (COMPLETED, FAILED):
            assert saga.response_status is not None and saga.response_body is not None
            return _answer(saga.response_status, saga.response_body, replayed=True)
        flow = Fulfilment(store, service_client(request.scope), request.headers)
        try:
            status, result = await flow.run(saga)
        except ServiceTimeout as exc:
            log.warning("order %s in doubt: %s", key, exc)
            raise Problem(503, IN_DOUBT) from None
        except ServiceUnavailable as exc:
            log.warning("order %s not placed: %s", key, exc)
            raise Problem(503, RETRY) from None
    return _answer(status, result, replayed=False)


def _answer(status: int, body: dict[str, Any], replayed: bool) -> JSONResponse:
    headers = {"Idempotency-Replayed": "true"} if replayed else {}
    media = "application/problem+json" if status >= 400 else "application/json"
    return JSONResponse(body, status_code=status, headers=headers, media_type=media)


async def sweep(store: SagaStore, client: ServiceClient, older_than: float = STALE_AFTER) -> int:
    """Compensate sagas whose request died mid-way; returns how many were handled."""
    handled = 0
    for saga in await store.stale(older_than):
        try:
            await Fulfilment(store, client).compensate(saga)
            handled += 1
        except ServiceError as exc:
            log.warning("saga %s still unfinished: %s", saga.key, exc)
    return handled


async def sweep_later(store: SagaStore, client: ServiceClient) -> None:
    """After start-up (the gateway must be serving), compensate what a crash left behind."""
    await asyncio.sleep(SWEEP_DELAY)
    try:
        handled = await sweep(store, client)
    except Exception:
        log.exception("start-up saga sweep failed")
        return
    if handled:
        log.warning("start-up sweep finished %d interrupted sagas", handled)


def create_app(env: dict[str, str] | None = None, database_url: str | None = None) -> Any:
    store = SagaStore(database_url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await store.open()
        app.state.store = store
        try:
            yield
        finally:
            await store.close()

    return create_tier_app(
        API,
        [
            Route("/products", list_products, methods=["GET"]),
            Route("/products/{sku}", get_product, methods=["GET"]),
            Route("/orders", place_order, methods=["POST"]),
            Route("/orders/{order_id}", get_order, methods=["GET"]),
        ],
        lifespan=lifespan,
        env=env,
        on_started=lambda client: sweep_later(store, client),
    )


app = create_app()
