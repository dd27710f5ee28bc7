"""What process and experience APIs add to the shared kit: calling the tier below.

Problem answers and input parsing are the system APIs' (`problems`, `validation`);
this module adds the upstream-error answers, Idempotency-Key handling for calls
below, path/query parsing in one call, and the app factory wiring a ServiceClient.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from apis._shared.app import tier_app
from apis._shared.problems import EXCEPTION_HANDLERS as BASE_HANDLERS
from apis._shared.problems import (
    FORMAT_MISMATCH,
    LABELS,
    PARAMETER_INVALID,
    Problem,
    parameter_error,
    parameter_problem,
    problem_response,
)
from apis._shared.service_client import (
    ServiceConflict,
    ServiceError,
    ServiceNotFound,
    ServiceRejected,
    ServiceTimeout,
    WithServiceClient,
)

Model = TypeVar("Model", bound=BaseModel)
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
MISSING_KEY = "This operation requires an Idempotency-Key header (a UUID is a good choice)."
BAD_KEY = "The Idempotency-Key header must be 1-255 visible ASCII characters."
# Client-facing sentences name no service behind this API (those are in the log).
UNAVAILABLE = "A service this API depends on is unavailable; try again later."
TIMED_OUT = "A service this API depends on did not answer in time; try again later."
REFUSED = "A service this API depends on refused the call; this is not your request's fault."
log = logging.getLogger("tiergate.apis")


async def service_error_handler(request: Request, exc: Exception) -> Response:
    """An upstream failure nobody handled: the client's own input refused below is 400,
    naming it; otherwise 504 for a timeout, 503 when down, 502 refused."""
    assert isinstance(exc, ServiceError)
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    if isinstance(exc, ServiceTimeout):
        return problem_response(504, TIMED_OUT)
    if isinstance(exc, ServiceRejected):
        errors = inherited_errors(request, exc)
        if errors:
            first = errors[0]
            detail = PARAMETER_INVALID.format(
                where=LABELS[first["in"]], name=first["name"], message=first["detail"]
            )
            return problem_response(400, detail, errors=errors)
        return problem_response(502, REFUSED)
    return problem_response(503, UNAVAILABLE)


def inherited_errors(request: Request, exc: ServiceError) -> list[dict[str, str]] | None:
    """The tier below answered 400 for parameters that are the client's own (passed down
    under the same name with the same value): those errors, re-told as the client's.
    None when any refused value is not the client's (then it is this API's fault)."""
    errors = exc.problem.get("errors")
    if exc.status != 400 or not isinstance(errors, list) or not errors:
        return None
    inherited = []
    for error in errors:
        if not isinstance(error, dict):
            return None
        where, name = error.get("in"), str(error.get("name"))
        if where == "query":
            given = request.query_params.get(name)
            if given is None or str(exc.params.get(name)) != given:
                return None
        elif where == "path":
            given = request.path_params.get(name)
            if given is None or f"/{given}" not in exc.path:
                return None
        else:
            return None
        inherited.append(parameter_error(where, name, str(error.get("detail") or FORMAT_MISMATCH)))
    return inherited


EXCEPTION_HANDLERS: dict[Any, Any] = {**BASE_HANDLERS, ServiceError: service_error_handler}


def parse_params(model: type[Model], request: Request, lists: Sequence[str] = ()) -> Model:
    """Path and query parameters together; anything malformed is 400, naming where it is."""
    values: dict[str, Any] = {}
    for key in request.query_params:
        params = request.query_params
        values[key] = params.getlist(key) if key in lists else params[key]
    values.update(request.path_params)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        where = dict.fromkeys(request.path_params, "path")
        raise parameter_problem(exc, where) from None


def idempotency_key(request: Request) -> str:
    key = request.headers.get("idempotency-key")
    if key is None:
        raise Problem(
            400,
            MISSING_KEY,
            errors=[parameter_error("header", "Idempotency-Key", "Field required")],
        )
    if not IDEMPOTENCY_KEY_RE.match(key):
        raise Problem(
            400, BAD_KEY, errors=[parameter_error("header", "Idempotency-Key", FORMAT_MISMATCH)]
        )
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
    return (
        headers.get("x-consumer-id")
        or headers.get("x-client-id")
        or headers.get("x-caller-api")
        or "-"
    )


def passthrough_problem(exc: ServiceError) -> Problem:
    """A 404/409/422 of the tier below about what the client sent, re-told by this API
    with the same status. Any other refusal is this API's own fault: a 502 (unhandled)."""
    if isinstance(exc, ServiceNotFound | ServiceConflict) or exc.status == 422:
        return Problem(exc.status or 422, exc.reason)
    raise exc


def create_tier_app(
    api: str,
    routes: Sequence[BaseRoute],
    *,
    lifespan: Any = None,
    env: Mapping[str, str] | None = None,
    on_started: Any = None,
) -> WithServiceClient:
    """A starlette app with problem+json errors and a ServiceClient for the tier below."""
    app = tier_app(routes, lifespan, EXCEPTION_HANDLERS)
    return WithServiceClient(app, api, env=env, on_started=on_started)
