"""What process and experience APIs add to the shared kit.

Problem answers and input parsing are the system APIs' (`problems`, `validation`);
calling the tier below and its errors are `upstream`'s. This module adds
Idempotency-Key handling for calls below, path/query parsing in one call, and the app
factory wiring a ServiceClient and the upstream-error answers.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from starlette.requests import Request
from starlette.routing import BaseRoute

from apis._shared.app import tier_app
from apis._shared.problems import EXCEPTION_HANDLERS as BASE_HANDLERS
from apis._shared.problems import (
    FORMAT_MISMATCH,
    Problem,
    parameter_error,
    parameter_problem,
)
from apis._shared.service_client import WithServiceClient
from apis._shared.upstream import UPSTREAM_HANDLERS

Model = TypeVar("Model", bound=BaseModel)
IDEMPOTENCY_KEY_RE = re.compile(r"^[\x21-\x7e]{1,255}$")
MISSING_KEY = "This operation requires an Idempotency-Key header (a UUID is a good choice)."
BAD_KEY = "The Idempotency-Key header must be 1-255 visible ASCII characters."

EXCEPTION_HANDLERS: dict[Any, Any] = {**BASE_HANDLERS, **UPSTREAM_HANDLERS}


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


def caller_of(request: Request) -> str:
    """Who is calling, as the gateway says (headers it owns), for scoping keys."""
    headers = request.headers
    return (
        headers.get("x-consumer-id")
        or headers.get("x-client-id")
        or headers.get("x-caller-api")
        or "-"
    )


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
