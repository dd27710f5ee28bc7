"""What process and experience APIs add to the shared kit: calling the tier below.

Problem answers and input parsing are the system APIs' (`problems`, `validation`);
this module adds the upstream-error answers, Idempotency-Key handling for calls
below, path/query parsing in one call, and the app factory wiring a ServiceClient.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from apis._shared.problems import EXCEPTION_HANDLERS as BASE_HANDLERS
from apis._shared.problems import Problem, ProblemGuard, parameter_problem, problem_response
from apis._shared.service_client import (
    ServiceConflict,
    ServiceError,
    ServiceNotFound,
    ServiceRejected,
    ServiceTimeout,
    WithServiceClient,
)

Model = TypeVar("Model", bound=BaseModel)
TITLES = {404: "Not Found", 409: "Conflict", 422: "Unprocessable Content",
          503: "Service Unavailable"}
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
MISSING_KEY = "This operation requires an Idempotency-Key header (a UUID is a good choice)."
BAD_KEY = "The Idempotency-Key header must be 1-255 visible ASCII characters."
UNAVAILABLE = "{service} is unavailable ({reason}); try again later."
REFUSED = "{service} refused the call: {reason}"


async def service_error_handler(request: Request, exc: Exception) -> Response:
    """An upstream failure nobody handled: 504 for a timeout, 503 when down, 502 refused."""
    assert isinstance(exc, ServiceError)
    if isinstance(exc, ServiceTimeout):
        return problem_response(504, UNAVAILABLE.format(service=exc.service, reason=exc.reason))
    if isinstance(exc, ServiceRejected):
        return problem_response(502, REFUSED.format(service=exc.service, reason=exc.reason))
    return problem_response(503, UNAVAILABLE.format(service=exc.service, reason=exc.reason))


EXCEPTION_HANDLERS: dict[Any, Any] = {**BASE_HANDLERS, ServiceError: service_error_handler}


def problem_body(status: int, detail: str) -> dict[str, Any]:
    """A problem document as data (stored by sagas, answered again on replay)."""
    return {"type": "about:blank", "title": TITLES.get(status, "Error"), "status": status,
            "detail": detail}


def parse_params(model: type[Model], request: Request, lists: Sequence[str] = ()) -> Model:
    """Path and query parameters together; anything malformed is 400."""
    values: dict[str, Any] = {}
    for key in request.query_params:
        params = request.query_params
        values[key] = params.getlist(key) if key in lists else params[key]
    values.update(request.path_params)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise parameter_problem(exc, "query") from None


def idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if key is None:
        raise Problem(400, MISSING_KEY,
                      errors=[{"header": "Idempotency-Key", "detail": "Field required"}])
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise Problem(400, BAD_KEY, errors=[{"header": "Idempotency-Key", "detail": BAD_KEY}])
    return key


def derived_key(*parts: str) -> str:
    """An Idempotency-Key for a call below, fixed by the caller's key (stays <= 255)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:40]
    return f"{parts[0]}-{digest}"


def replayed_header(response: Any) -> dict[str, str]:
    """Pass on the tier below's `Idempotency-Replayed: true`."""
    replayed = response.headers.get("idempotency-replayed")
    return {"Idempotency-Replayed": replayed} if replayed else {}


def caller_of(request: Request) -> str:
    """Who is calling, as the gateway says (headers it owns), for scoping keys."""
    headers = request.headers
    return (headers.get("x-consumer-id") or headers.get("x-client-id")
            or headers.get("x-caller-api") or "-")


def passthrough_problem(exc: ServiceError) -> Problem:
    """A 404/409/422 of the tier below, re-told by this API with the same status."""
    status = exc.status if isinstance(exc, ServiceNotFound | ServiceConflict) else 422
    return Problem(status or 422, exc.reason)


def create_tier_app(api: str, routes: Sequence[BaseRoute], *, lifespan: Any = None,
                    env: Mapping[str, str] | None = None,
                    on_started: Any = None) -> WithServiceClient:
    """A starlette app with problem+json errors and a ServiceClient for the tier below."""
    app = Starlette(routes=list(routes), lifespan=lifespan,
                    exception_handlers=EXCEPTION_HANDLERS,
                    middleware=[Middleware(ProblemGuard)])
    return WithServiceClient(app, api, env=env, on_started=on_started)
