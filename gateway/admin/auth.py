"""Bearer protection for admin endpoints: constant-time compare with the admin token."""

from __future__ import annotations

import functools
import hmac
from collections.abc import Awaitable, Callable

from starlette.requests import Request

from gateway.admin.tokens import ADMIN_IDENTITY
from gateway.problem import Answer, ProblemResponse

ADMIN_DISABLED = (
    "The admin API is disabled: set TIERGATE_ADMIN_TOKEN (or admin_token or admin_tokens "
    "in the config) and restart the gateway."
)
ADMIN_UNAUTHORIZED = "Send the admin token as 'Authorization: Bearer <token>'."
CHALLENGE = ("www-authenticate", 'Bearer realm="tiergate-admin"')

Endpoint = Callable[[Request], Awaitable[Answer]]


def require_admin(token: str | None, endpoint: Endpoint) -> Endpoint:
    """Wrap an endpoint: 503 when no token is configured, 401 without the right one."""
    expected = token.encode() if token else None

    @functools.wraps(endpoint)
    async def guarded(request: Request) -> Answer:
        if request.scope.get(ADMIN_IDENTITY) is not None:  # AdminAuthentication knew the token
            return await endpoint(request)
        if expected is None and not request.scope.get("tiergate.admin_configured"):
            return ProblemResponse(503, ADMIN_DISABLED)
        if expected is None:
            return ProblemResponse(401, ADMIN_UNAUTHORIZED, headers=[CHALLENGE])
        scheme, _, presented = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
            presented.strip().encode(), expected
        ):
            return ProblemResponse(401, ADMIN_UNAUTHORIZED, headers=[CHALLENGE])
        return await endpoint(request)

    return guarded
