"""Calling the tier below and telling its failures to the client, in one place.

A process or experience API reaches the tier below through the gateway with its
ServiceClient (`service_client`), which raises a `ServiceError` for any unusable
answer. What the client then sees is decided here:

- `fetch`: a GET whose 404 means "what you asked for does not exist" (this API's 404,
  in its own words);
- `post_and_relay`: a POST whose 404/409/422 is about what the client sent (re-told with
  the same status) and whose answer, status and `Idempotency-Replayed` are passed on;
- `service_error_handler`: every other failure, for any handler: 400 when the tier below
  refused a parameter that is the client's own, 504 timeout, 503 down, 502 refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from apis._shared.problems import (
    FORMAT_MISMATCH,
    LABELS,
    PARAMETER_INVALID,
    Problem,
    parameter_error,
    problem_response,
)
from apis._shared.service_client import (
    ServiceConflict,
    ServiceError,
    ServiceNotFound,
    ServiceRejected,
    ServiceTimeout,
    service_client,
)

# Client-facing sentences name no service behind this API (those are in the log).
UNAVAILABLE = "A service this API depends on is unavailable; try again later."
TIMED_OUT = "A service this API depends on did not answer in time; try again later."
REFUSED = "A service this API depends on refused the call; this is not your request's fault."
log = logging.getLogger("tiergate.apis")


async def fetch(
    request: Request,
    path: str,
    *,
    service: str,
    params: Mapping[str, Any] | None = None,
    not_found: str | None = None,
) -> Any:
    """GET `path` below as JSON, for the request being served. With `not_found`, a 404
    below is this API's 404 with that detail; any other failure is left to
    `service_error_handler`."""
    try:
        return await service_client(request.scope).get_json(
            path, service=service, incoming=request.headers, params=params
        )
    except ServiceNotFound:
        if not_found is None:
            raise
        raise Problem(404, not_found) from None


async def post_and_relay(
    request: Request,
    path: str,
    *,
    service: str,
    json: Any,
    idempotency_key: str,
    mapper: Callable[[Any], Any],
) -> JSONResponse:
    """POST `json` below with `idempotency_key`; answer with the mapped body and the same
    status (201, or 202 for an order still being completed) and replay marker. A
    refusal of what the client sent keeps its status (`passthrough_problem`)."""
    try:
        response = await service_client(request.scope).request(
            "POST",
            path,
            service=service,
            incoming=request.headers,
            json=json,
            headers={"Idempotency-Key": idempotency_key},
        )
    except ServiceRejected as exc:
        raise passthrough_problem(exc) from None
    return JSONResponse(
        mapper(response.json()),
        status_code=response.status_code,
        headers=replayed_header(response),
    )


def passthrough_problem(exc: ServiceError) -> Problem:
    """A 404/409/422 of the tier below about what the client sent, re-told by this API
    with the same status. Any other refusal is this API's own fault: a 502 (unhandled)."""
    if isinstance(exc, ServiceNotFound | ServiceConflict) or exc.status == 422:
        return Problem(exc.status or 422, exc.reason)
    raise exc


def replayed_header(response: Any) -> dict[str, str]:
    """Pass on the tier below's `Idempotency-Replayed: true`."""
    replayed = response.headers.get("idempotency-replayed")
    return {"Idempotency-Replayed": replayed} if replayed else {}


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


UPSTREAM_HANDLERS: dict[Any, Any] = {ServiceError: service_error_handler}
