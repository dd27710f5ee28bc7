"""The caller's identity as the gateway passes it upstream (already verified there)."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request


@dataclass(frozen=True, slots=True)
class CallerIdentity:
    consumer_id: str | None
    client_id: str | None
    scopes: frozenset[str]
    caller_api: str | None
    user: str | None = None  # the signed-in user the call is for
    customer_id: str | None = None  # the user's customer account
    actors: tuple[str, ...] = ()  # services acting for the user, nearest first

    @property
    def key(self) -> str:
        """A stable name for the caller, for scoping idempotency keys."""
        return self.consumer_id or self.client_id or "-"


def identity_from(request: Request) -> CallerIdentity:
    headers = request.headers
    return CallerIdentity(
        consumer_id=headers.get("x-consumer-id") or None,
        client_id=headers.get("x-client-id") or None,
        scopes=frozenset(headers.get("x-scopes", "").split()),
        caller_api=headers.get("x-caller-api") or None,
        user=headers.get("x-end-user") or None,
        customer_id=headers.get("x-customer-id") or None,
        actors=tuple(headers.get("x-actor", "").split()),
    )
