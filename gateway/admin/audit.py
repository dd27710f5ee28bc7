"""The admin listener's part of the audit trail: every change made through the admin API
is recorded (who: the admin token's name), and GET /admin/audit reads the trail.

A change is any request other than GET, HEAD and OPTIONS that succeeds (status below
400). Its "after" is the response document; its "before", for an action on an existing
resource (`/admin/keys/{id}/revoke`), is what GET of that resource answered just before.
Both are stored with secrets redacted. The trail itself has no write endpoint.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.admin.auth import require_admin
from gateway.admin.tokens import ADMIN_IDENTITY
from gateway.problem import Answer, ProblemResponse
from gateway.registry import audit
from gateway.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("tiergate.audit")

READS = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_RECORDED = "audit entry for %s %s not recorded: %s"
BAD_FILTER = "Query parameter '{name}' must be {what}."
FILTERS = ("actor", "action", "target")


class AuditTrail:
    """ASGI middleware: record successful changes after the app answered them."""

    def __init__(self, app: ASGIApp, registry: Any) -> None:
        self.app = app
        self.registry = registry

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS or self.registry is None:
            await self.app(scope, receive, send)
            return
        before = await self._before(scope)
        held: list[Message] = []

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(scope, receive, hold)
        start = next((m for m in held if m["type"] == "http.response.start"), None)
        if start is not None and start["status"] < 400:
            body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
            await self._record(scope, before, body)
        for message in held:
            await send(message)

    async def _before(self, scope: Scope) -> Any:
        parts = scope["path"].rstrip("/").split("/")
        if len(parts) < 5:  # "", "admin", collection, id, action
            return None
        parent = {**scope, "method": "GET", "path": "/".join(parts[:-1]), "query_string": b""}
        parent["raw_path"] = parent["path"].encode()
        held: list[Message] = []

        async def nothing() -> Message:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def hold(message: Message) -> None:
            held.append(message)

        await self.app(parent, nothing, hold)
        if not held or held[0].get("status") != 200:
            return None
        return _json(b"".join(m.get("body", b"") for m in held[1:]))

    async def _record(self, scope: Scope, before: Any, body: bytes) -> None:
        identity = scope.get(ADMIN_IDENTITY)
        actor = f"admin-token:{identity.name}" if identity is not None else "admin-token:?"
        path = scope["path"]
        parts = path.rstrip("/").split("/")
        after = _json(body)
        target = parts[3] if len(parts) > 3 else _named(after)
        try:
            await audit.append(
                self.registry, actor, f"{scope['method']} {path}", target, before, after
            )
        except Exception as error:  # the change is made: say loudly that it is not recorded
            log.error(NOT_RECORDED, scope["method"], path, type(error).__name__)


def _named(document: Any) -> str | None:
    """What a creation made: the new resource's id, as its document names it."""
    if isinstance(document, dict):
        for field in ("id", "client_id", "kid", "name"):
            if isinstance(document.get(field), str):
                return str(document[field])
    return None


def _json(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def audit_route(registry: Any, token: str | None) -> Route:
    async def read(request: Request) -> Answer:
        params = request.query_params
        try:
            numbers = {name: float(params[name]) for name in ("since", "until") if name in params}
            limit = int(params.get("limit", "50"))
            before_id = int(params["before_id"]) if "before_id" in params else None
        except ValueError:
            detail = BAD_FILTER.format(name="since, until, limit or before_id", what="a number")
            return ProblemResponse(400, detail)
        if before_id is not None and not 0 < before_id < 2**63:
            detail = BAD_FILTER.format(name="before_id", what="a positive 64-bit integer")
            return ProblemResponse(400, detail)
        if not all(math.isfinite(value) for value in numbers.values()):
            detail = BAD_FILTER.format(name="since or until", what="a finite number")
            return ProblemResponse(400, detail)
        if not 1 <= limit <= audit.MAX_PAGE:
            detail = BAD_FILTER.format(name="limit", what=f"between 1 and {audit.MAX_PAGE}")
            return ProblemResponse(400, detail)
        found = await audit.entries(
            registry,
            **{name: params[name] for name in FILTERS if name in params},
            since=numbers.get("since"),
            until=numbers.get("until"),
            before_id=before_id,
            limit=limit,
        )
        following = found[-1].id if len(found) == limit else None
        return JSONResponse({"items": [e.public() for e in found], "next_before_id": following})

    return Route("/admin/audit", require_admin(token, read), methods=["GET"])
