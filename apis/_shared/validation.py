"""Reading requests into pydantic models, with problem+json on failure."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError
from starlette.requests import Request

from apis._shared.problems import Problem, body_problem, parameter_problem

M = TypeVar("M", bound=BaseModel)

BODY_MISSING = "This request needs a JSON body."
BODY_MALFORMED = "The request body is not valid JSON: {error}."
BODY_TOO_LARGE = "The request body is larger than {limit} bytes."
MAX_BODY = 256 * 1024
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _plain_text(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("must not contain control characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text") from None
    return value


Text = Annotated[str, AfterValidator(_plain_text)]
"""A string without control characters or lone surrogates (safe for every database)."""


async def read_body(request: Request, model: type[M]) -> tuple[M, Any]:
    """The validated body and the raw JSON value (for idempotency fingerprints)."""
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise Problem(413, BODY_TOO_LARGE.format(limit=MAX_BODY))
    if not raw.strip():
        raise Problem(400, BODY_MISSING)
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise Problem(400, BODY_MALFORMED.format(error=exc)) from None
    try:
        return model.model_validate(data), data
    except ValidationError as exc:
        raise body_problem(exc) from None


def read_query(request: Request, model: type[M]) -> M:
    try:
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise parameter_problem(exc, "query") from None


def path_id(request: Request, name: str, pattern: re.Pattern[str], missing: str) -> str:
    """A path identifier; one that cannot exist is simply not found (404)."""
    value = str(request.path_params[name])
    if not pattern.fullmatch(value):
        raise Problem(404, missing.format(value=value[:80]))
    return value
