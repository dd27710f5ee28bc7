"""Placing an order as a saga, with compensation.

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
import logging
import weakref
from typing import Any

from sqlalchemy.exc import IntegrityError

from apis._shared.composition import derived_key
from apis._shared.problems import Problem, problem_body
from apis._shared.service_client import (
    ServiceClient,
    ServiceConflict,
    ServiceError,
    ServiceNotFound,
    ServiceRejected,
    ServiceTimeout,
    ServiceUnavailable,
)
from apis.process.order_fulfilment.models import map_order
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

INVENTORY = "/system/inventory/v1"
ORDERS = "/system/orders/v1"
KEY_REUSED = "This Idempotency-Key was used with a different request body."
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

Outcome = tuple[int, dict[str, Any]]  # (status, body) the client is answered with


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

    async def _finish(self, saga: Saga, state: str, status: int, body: dict[str, Any]) -> Outcome:
        saga.state, saga.response_status, saga.response_body = state, status, body
        await self.store.save(saga)
        return status, body

    async def _fail(self, saga: Saga, status: int, detail: str) -> Outcome:
        body = problem_body(status, detail)
        return await self._finish(saga, FAILED, status, body)

    async def price(self, saga: Saga) -> Outcome | None:
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

    async def reserve(self, saga: Saga) -> Outcome | None:
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

    async def create_order(self, saga: Saga) -> Outcome | None:
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

    async def commit(self, saga: Saga) -> Outcome:
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

    async def run(self, saga: Saga) -> Outcome:
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


async def place(
    store: SagaStore, client: ServiceClient, incoming: Any, key: str, body: dict[str, Any]
) -> tuple[int, dict[str, Any], bool]:
    """Run (or replay) the saga for `key`: (status, body, replayed). One request per key
    at a time in this process; the store's primary key settles a race between processes.
    A key reused for another body is 422; a call below that failed is 503."""
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
            return saga.response_status, saga.response_body, True
        try:
            status, result = await Fulfilment(store, client, incoming).run(saga)
        except ServiceTimeout as exc:
            log.warning("order %s in doubt: %s", key, exc)
            raise Problem(503, IN_DOUBT) from None
        except ServiceUnavailable as exc:
            log.warning("order %s not placed: %s", key, exc)
            raise Problem(503, RETRY) from None
    return status, result, False


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
